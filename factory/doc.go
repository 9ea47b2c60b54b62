// Package factory is imgpipe's dependable Image Factory client. It wraps
// image-factory's pkg/client and pkg/schematic with what they lack: per-attempt
// timeouts, bounded retries with exponential backoff and jitter on 408, 429, 5xx
// and broken connections (honouring Retry-After; the Transport is exported for
// reuse), a /healthz probe, basic auth for self-hosted factories, schematic ensure
// (POST, compare the returned ID with the local one, GET it back), resumable
// streaming downloads into a content-addressed cache with sha256 and sha512
// computed on the way (the public factory publishes no checksums), installer
// pre-warming through the factory registry, lock-level operations with dry runs
// (EnsureLock, FetchLock, PrewarmLock) for the CLI and the pipeline, and live
// catalog reads merged into the compatibility matrix (Refresh, CrossCheck).
// factorytest holds an in-process fake factory for tests.
package factory
