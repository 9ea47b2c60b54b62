// Package verify checks cosign signatures of every image a lock names — Talos and
// extension images, the extensions catalog and Image Factory installers — before they
// are mirrored or written into an upgrade plan. It is the only package that imports
// cosign and sigstore. Each image is matched to one policy (site policies from
// imgpipe.yaml first, then the built-in Sidero and Image Factory ones); a policy names
// public keys and/or keyless identities (OIDC issuer + subject), and an image gets a
// verdict row: verified, failed, missing, unsigned-allowed, skipped or error. The check
// always binds the signed payload to the image's digest and never runs a keyless check
// without an identity. Signatures are read where the image is read: when a mirror
// function rewrites the reference, both the digest and the `sha256-<hex>.sig` tag come
// from the mirror, so an air-gapped site verifies exactly what it pulls. Keyless trust
// comes from a sigstore trusted root (a trusted_root.json for offline runs, or TUF).
// Two signature formats are read, for keys and keyless identities alike: legacy cosign
// `.sig` tags (keyless ones need their Rekor SET, checked offline against the trusted
// root) and sigstore bundles v0.3 attached as OCI referrers (referrers API or its
// sha256-<hex> tag fallback), as `cosign sign --new-bundle-format` (cosign v3's default)
// and image-factory's GSA signer write them; bundle times may come from Rekor v1 or a TSA.
package verify
