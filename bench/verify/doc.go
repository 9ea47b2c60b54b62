// Package verifybench measures `imgpipe verify` (pipeline/verify) against the cosign
// library calls `cosign verify` makes, on the same in-process loopback registry and the
// same signed images: key-signed (.sig, Image Factory style), keyless (.sig with a Rekor
// SET) and keyless sigstore bundles attached as referrers. Run with
//
//	go test ./bench/verify -run '^$' -bench . -benchmem
//
// run.sh times the `imgpipe verify` and `cosign verify` binaries end to end, and
// TestCosignCLIInterop (COSIGN=/path/to/cosign) checks that what the cosign CLI signs,
// in both formats, imgpipe verifies. Debian's skopeo is built without sigstore support,
// so it is not compared.
package verifybench
