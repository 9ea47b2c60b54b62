// Package verifybench measures `imgpipe verify` (pipeline/verify) against the cosign
// library calls `cosign verify` makes, on the same in-process loopback registry and the
// same signed images: key-signed (.sig, Image Factory style), keyless (.sig with a Rekor
// SET) and keyless sigstore bundles attached as referrers. Run with
//
//	go test ./bench/verify -run '^$' -bench . -benchmem
//
// run.sh also times skopeo's sigstoreSigned policy on the key-signed images when skopeo
// is installed.
package verifybench
