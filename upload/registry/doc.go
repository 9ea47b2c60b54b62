// Package registry moves a lock's container images into the site's local registries.
// It derives the image set of a lock (Talos core images, extensions, factory installers,
// the extensions catalog and site extras) and maps each upstream reference to its local
// mirror (one registry per upstream host, or a single overridePath registry). Each endpoint
// is either a plain registry, filled by copying by digest with the whole index and the
// cosign signature tags and OCI referrers kept (push), or a pull-through cache, pre-seeded by
// asking through it for every manifest and blob until it has stored them (warm), since such
// caches refuse pushes with 405. Both modes share one bounded, retrying (Retry-After
// honoured), resumable engine with an idle timeout on every request, built on
// go-containerregistry's names, manifest types and authenticating transport, and end with a
// per-image verification that the mirror resolves the expected digest. Journals and earlier
// runs are hints: what a rerun reports present, it has checked. The image-set and endpoint-map functions do no
// network I/O so that other stages (verification, upgrade planning) can reuse them.
package registry
