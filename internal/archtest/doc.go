// Package archtest holds no code, only a test that enforces the import direction of
// the house style: compat and extensions are pure (no network or disk I/O, nothing
// from the stages above them), and site never reaches the pipeline, the factory
// client, the uploaders or the CLI. Imports flow downward only.
package archtest
