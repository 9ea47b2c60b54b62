// Package factorytest is an in-process fake Image Factory for tests: the real API
// shapes (/versions, ?broken=true, /version/<v>/extensions|overlays/official,
// POST/GET /schematics with the real ID rule from pkg/schematic, /image/... with
// Range and If-Range, /healthz, and the /v2/ registry frontend that builds
// installers on demand) served from a Catalog you give it, on 127.0.0.1 only.
// Image bytes are generated deterministically from (schematic, version, path), so
// any size can be served without storing it. Faults can be injected per route:
// 5xx, 429 with Retry-After, slow answers, stalls and connections cut mid-body.
package factorytest
