// Package extensions knows Talos system extensions: their names (short and
// "siderolabs/" full forms), the Image Factory's aliases and the pre-v1.8 NVIDIA
// names, the tag grammar (kernel modules <driver>-<talos>, container toolkit
// <driver>-<ctk>, fabric manager <driver>), NVIDIA tiers (lts/production) and the
// pairing gate between kernel modules and toolkit, and the two catalog formats
// (the factory's JSON list and the extensions image's image-digests file).
// Pure: no network or disk I/O.
package extensions
