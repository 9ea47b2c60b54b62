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
//
// # Resuming downloads
//
// An interrupted download leaves partial/<sha256(url)> and a JSON record beside it.
// A later run continues it with an HTTP Range request when either
//
//   - the server sent a strong ETag or a Last-Modified date: the resume carries it in
//     If-Range, so a changed representation is sent whole and the download restarts; or
//   - the URL names an immutable file, <factory>/image/<schematic ID>/<vX.Y.Z>/<file>
//     with a 64-hex schematic ID and an exact release, and the run that stopped
//     recorded the partial file's size and sha256. The schematic ID is a content hash
//     and the factory builds the file from the ID, release and name alone, so its
//     bytes never change; the next run re-hashes the partial file and resumes only if
//     size and hash are what was recorded (else it starts over). The public factory
//     sends no validator for the artifacts it serves itself, so this is its case.
//
// Anything else starts over. A process killed before it could record the partial
// (SIGKILL, power loss) starts over too. Either way the completed file is hashed
// whole and must match the lock's checksum before it is stored under blobs/.
package factory
