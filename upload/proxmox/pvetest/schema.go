package pvetest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The parameter rules below are written from the PVE API documentation for the
// endpoints imgpipe uses (types, required/optional, enums, patterns, property-string
// keys). They are this package's own restatement, not a copy of the API dump.

type kind int

const (
	tString kind = iota
	tInteger
	tBoolean
)

// param is one API parameter: its type and the checks PVE's JSONSchema applies.
type param struct {
	kind     kind
	optional bool
	enum     []string
	pattern  *regexp.Regexp // anchored
	maxLen   int
	min, max *int64
	requires string
	// prop is set for property strings ("key=value,key=value").
	prop *propString
	// check is an extra format check (dns-name, tag list, volume ids, ...).
	check func(string) error
}

// propString describes a PVE property string such as scsi0 or net0.
type propString struct {
	defaultKey string
	keys       map[string]param
}

// spec is the parameter set of one method on one path. indexed maps "scsi" to
// the rule for scsi0..scsiN (PVE writes these as "scsi[n]").
type spec struct {
	params  map[string]param
	indexed map[string]indexedParam
}

type indexedParam struct {
	max int
	p   param
}

func anchored(re string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + re + `)$`) }

func i64(v int64) *int64 { return &v }

var (
	nodeRE      = anchored(`[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?`)
	storageIDRE = anchored(`(?i:[a-z][a-z0-9\-_.]*[a-z0-9])`)
	dnsNameRE   = anchored(`(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?`)
	tagRE       = anchored(`(?i:[a-z0-9_][a-z0-9_\-+.]*)`)
	volumeIDRE  = anchored(`[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]:.+`)
	diskSizeRE  = anchored(`\d+(?:\.\d+)?[KMGT]?`)
	checksumAlg = []string{"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}
	contentEnum = []string{"iso", "vztmpl", "import"}
	storageCT   = []string{"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"}
)

func nodeParam() param    { return param{kind: tString, pattern: nodeRE} }
func storageParam() param { return param{kind: tString, pattern: storageIDRE} }
func vmidParam() param {
	return param{kind: tInteger, min: i64(100), max: i64(999999999)}
}

func tagList(v string) error {
	for _, t := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		if !tagRE.MatchString(t) {
			return fmt.Errorf("invalid characters in tag '%s'", t)
		}
	}
	return nil
}

func dnsName(v string) error {
	if !dnsNameRE.MatchString(v) {
		return fmt.Errorf("value does not look like a valid DNS name")
	}
	return nil
}

func volumeID(v string) error {
	if strings.HasPrefix(v, "/") {
		return nil // absolute paths are allowed for root@pam only; the fake's token is not root
	}
	if !volumeIDRE.MatchString(v) {
		return fmt.Errorf("unable to parse volume ID '%s'", v)
	}
	return nil
}

// diskVolume is the default key of a drive: "<storage>:<size in GiB>" to allocate,
// or an existing volume id, or "none".
func diskVolume(v string) error {
	if v == "none" || v == "cdrom" {
		return nil
	}
	return volumeID(v)
}

func driveKeys() *propString {
	keys := map[string]param{
		"file":          {kind: tString, check: diskVolume},
		"volume":        {kind: tString, optional: true, check: diskVolume},
		"import-from":   {kind: tString, optional: true, check: volumeID},
		"media":         {kind: tString, optional: true, enum: []string{"cdrom", "disk"}},
		"size":          {kind: tString, optional: true, pattern: diskSizeRE},
		"discard":       {kind: tString, optional: true, enum: []string{"ignore", "on"}},
		"ssd":           {kind: tBoolean, optional: true},
		"iothread":      {kind: tBoolean, optional: true},
		"backup":        {kind: tBoolean, optional: true},
		"cache":         {kind: tString, optional: true, enum: []string{"none", "writethrough", "writeback", "unsafe", "directsync"}},
		"aio":           {kind: tString, optional: true, enum: []string{"native", "threads", "io_uring"}},
		"format":        {kind: tString, optional: true, enum: []string{"raw", "qcow", "qed", "qcow2", "vmdk", "cloop"}},
		"replicate":     {kind: tBoolean, optional: true},
		"ro":            {kind: tBoolean, optional: true},
		"serial":        {kind: tString, optional: true},
		"snapshot":      {kind: tBoolean, optional: true},
		"detect_zeroes": {kind: tBoolean, optional: true},
	}
	return &propString{defaultKey: "file", keys: keys}
}

var netModels = []string{"e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
	"i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3"}

func netKeys() *propString {
	keys := map[string]param{
		"model":     {kind: tString, enum: netModels},
		"macaddr":   {kind: tString, optional: true, pattern: anchored(`(?i:[0-9a-f]{2}(?::[0-9a-f]{2}){5})`)},
		"bridge":    {kind: tString, optional: true, pattern: anchored(`[-_.\w\d]+`)},
		"firewall":  {kind: tBoolean, optional: true},
		"link_down": {kind: tBoolean, optional: true},
		"tag":       {kind: tInteger, optional: true, min: i64(1), max: i64(4094)},
		"mtu":       {kind: tInteger, optional: true, min: i64(1), max: i64(65520)},
		"queues":    {kind: tInteger, optional: true, min: i64(0), max: i64(64)},
		"rate":      {kind: tString, optional: true},
		"trunks":    {kind: tString, optional: true},
	}
	return &propString{defaultKey: "model", keys: keys}
}

// qemuCreateKeys are the top-level parameters POST /nodes/{node}/qemu accepts.
// Only the ones imgpipe sends get full checks; the rest are known-but-unchecked, so
// that "unknown parameter" means what it means on a real PVE.
var qemuCreateOther = []string{"acpi", "affinity", "allow-ksm", "amd-sev", "arch", "archive", "args", "audio0",
	"autostart", "balloon", "bootdisk", "bwlimit", "cdrom", "cicustom", "cipassword", "citype", "ciupgrade", "ciuser",
	"cpulimit", "cpuunits", "force", "freeze", "ha-managed", "hookscript", "hotplug", "hugepages",
	"import-working-storage", "intel-tdx", "ivshmem", "keephugepages", "keyboard", "kvm", "live-restore", "localtime",
	"lock", "migrate_downtime", "migrate_speed", "nameserver", "numa", "pool", "protection", "reboot", "rng0",
	"searchdomain", "shares", "smbios1", "smp", "spice_enhancements", "sshkeys", "startdate", "startup", "storage",
	"tablet", "tdf", "tpmstate0", "unique", "vcpus", "vga", "vmgenid", "vmstatestorage", "watchdog"}

var qemuIndexedOther = map[string]int{"hostpci": 15, "ipconfig": 31, "numa": 7, "parallel": 2, "sata": 5,
	"unused": 255, "usb": 13, "virtio": 15, "virtiofs": 9}

func qemuCreateSpec() spec {
	p := map[string]param{
		"node":        nodeParam(),
		"vmid":        vmidParam(),
		"name":        {kind: tString, optional: true, check: dnsName},
		"description": {kind: tString, optional: true, maxLen: 8192},
		"ostype": {kind: tString, optional: true, enum: []string{"other", "wxp", "w2k", "w2k3", "w2k8", "wvista",
			"win7", "win8", "win10", "win11", "l24", "l26", "solaris"}},
		"machine": {kind: tString, optional: true, prop: &propString{defaultKey: "type", keys: map[string]param{
			"type":      {kind: tString, optional: true, maxLen: 40, pattern: anchored(`(pc|pc(-i440fx)?-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?|q35|pc-q35-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?|virt(?:-\d+(\.\d+)+)?(\+pve\d+)?)`)},
			"viommu":    {kind: tString, optional: true, enum: []string{"intel", "virtio"}},
			"enable-s3": {kind: tBoolean, optional: true},
			"enable-s4": {kind: tBoolean, optional: true},
		}}},
		"bios": {kind: tString, optional: true, enum: []string{"seabios", "ovmf"}},
		"efidisk0": {kind: tString, optional: true, prop: &propString{defaultKey: "file", keys: map[string]param{
			"file":              {kind: tString, check: diskVolume},
			"volume":            {kind: tString, optional: true, check: diskVolume},
			"import-from":       {kind: tString, optional: true, check: volumeID},
			"efitype":           {kind: tString, optional: true, enum: []string{"2m", "4m"}},
			"pre-enrolled-keys": {kind: tBoolean, optional: true},
			"ms-cert":           {kind: tString, optional: true, enum: []string{"2011", "2023", "2023w", "2023k"}},
			"size":              {kind: tString, optional: true, pattern: diskSizeRE},
			"format":            {kind: tString, optional: true, enum: []string{"raw", "qcow", "qed", "qcow2", "vmdk", "cloop"}},
		}}},
		"cpu": {kind: tString, optional: true, prop: &propString{defaultKey: "cputype", keys: map[string]param{
			"cputype":         {kind: tString, optional: true, pattern: anchored(`[a-zA-Z0-9\-_.]+`)},
			"flags":           {kind: tString, optional: true},
			"hidden":          {kind: tBoolean, optional: true},
			"hv-vendor-id":    {kind: tString, optional: true},
			"phys-bits":       {kind: tString, optional: true},
			"guest-phys-bits": {kind: tInteger, optional: true},
			"reported-model":  {kind: tString, optional: true},
		}}},
		"cores":   {kind: tInteger, optional: true, min: i64(1)},
		"sockets": {kind: tInteger, optional: true, min: i64(1)},
		"memory": {kind: tString, optional: true, prop: &propString{defaultKey: "current", keys: map[string]param{
			"current": {kind: tInteger, min: i64(16)},
		}}},
		"scsihw": {kind: tString, optional: true, enum: []string{"lsi", "lsi53c810", "virtio-scsi-pci",
			"virtio-scsi-single", "megasas", "pvscsi"}},
		"boot": {kind: tString, optional: true, prop: &propString{defaultKey: "legacy", keys: map[string]param{
			"legacy": {kind: tString, optional: true, pattern: anchored(`[acdn]{1,4}`)},
			"order":  {kind: tString, optional: true, pattern: anchored(`[a-z]+\d+(?:;[a-z]+\d+)*`)},
		}}},
		"agent": {kind: tString, optional: true, prop: &propString{defaultKey: "enabled", keys: map[string]param{
			"enabled":             {kind: tBoolean},
			"freeze-fs":           {kind: tBoolean, optional: true},
			"fstrim_cloned_disks": {kind: tBoolean, optional: true},
			"type":                {kind: tString, optional: true, enum: []string{"virtio", "isa"}},
		}}},
		"tags":     {kind: tString, optional: true, check: tagList},
		"onboot":   {kind: tBoolean, optional: true},
		"start":    {kind: tBoolean, optional: true},
		"template": {kind: tBoolean, optional: true},
	}
	for _, k := range qemuCreateOther {
		if _, ok := p[k]; !ok {
			p[k] = param{kind: tString, optional: true}
		}
	}
	idx := map[string]indexedParam{
		"scsi":   {max: 30, p: param{kind: tString, optional: true, prop: driveKeys()}},
		"ide":    {max: 3, p: param{kind: tString, optional: true, prop: driveKeys()}},
		"net":    {max: 31, p: param{kind: tString, optional: true, prop: netKeys()}},
		"serial": {max: 3, p: param{kind: tString, optional: true, pattern: anchored(`(/dev/.+|socket)`)}},
	}
	for k, n := range qemuIndexedOther {
		idx[k] = indexedParam{max: n, p: param{kind: tString, optional: true}}
	}
	return spec{params: p, indexed: idx}
}

func uploadSpec() spec {
	return spec{params: map[string]param{
		"node":               nodeParam(),
		"storage":            storageParam(),
		"content":            {kind: tString, enum: contentEnum},
		"filename":           {kind: tString, maxLen: 255},
		"checksum":           {kind: tString, optional: true, requires: "checksum-algorithm"},
		"checksum-algorithm": {kind: tString, optional: true, enum: checksumAlg, requires: "checksum"},
		"tmpfilename":        {kind: tString, optional: true, pattern: anchored(`/var/tmp/pveupload-[0-9a-f]+`)},
	}}
}

func downloadSpec() spec {
	return spec{params: map[string]param{
		"node":                nodeParam(),
		"storage":             storageParam(),
		"url":                 {kind: tString, pattern: anchored(`https?://.*`)},
		"content":             {kind: tString, enum: contentEnum},
		"filename":            {kind: tString, maxLen: 255},
		"checksum":            {kind: tString, optional: true, requires: "checksum-algorithm"},
		"checksum-algorithm":  {kind: tString, optional: true, enum: checksumAlg, requires: "checksum"},
		"compression":         {kind: tString, optional: true, enum: []string{"gz", "lzo", "zst", "bz2"}},
		"verify-certificates": {kind: tBoolean, optional: true},
	}}
}

func simpleSpec(extra map[string]param, path ...string) spec {
	p := map[string]param{}
	for _, k := range path {
		switch k {
		case "node":
			p[k] = nodeParam()
		case "storage":
			p[k] = storageParam()
		case "vmid":
			p[k] = vmidParam()
		default:
			p[k] = param{kind: tString}
		}
	}
	for k, v := range extra {
		p[k] = v
	}
	return spec{params: p}
}

// validate checks vals against sp the way PVE's JSONSchema does and returns the
// per-parameter messages of a 400 reply (nil when valid).
func (sp spec) validate(vals map[string]string) map[string]string {
	errs := map[string]string{}
	for k, v := range vals {
		p, ok := sp.lookup(k)
		if !ok {
			errs[k] = "property is not defined in schema and the schema does not allow additional properties"
			continue
		}
		if msg := p.checkValue(v); msg != "" {
			errs[k] = msg
			continue
		}
		if p.requires != "" {
			if _, ok := vals[p.requires]; !ok {
				errs[k] = fmt.Sprintf("property requires '%s' to be set", p.requires)
			}
		}
	}
	for k, p := range sp.params {
		if _, ok := vals[k]; !ok && !p.optional {
			errs[k] = "property is missing and it is not optional"
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (sp spec) lookup(k string) (param, bool) {
	if p, ok := sp.params[k]; ok {
		return p, true
	}
	i := strings.IndexAny(k, "0123456789")
	if i <= 0 {
		return param{}, false
	}
	ip, ok := sp.indexed[k[:i]]
	if !ok {
		return param{}, false
	}
	n, err := strconv.Atoi(k[i:])
	if err != nil || n > ip.max || strconv.Itoa(n) != k[i:] {
		return param{}, false
	}
	return ip.p, true
}

func (p param) checkValue(v string) string {
	switch p.kind {
	case tInteger:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Sprintf("type check ('integer') failed - got '%s'", v)
		}
		if p.min != nil && n < *p.min {
			return fmt.Sprintf("value must have a minimum value of %d", *p.min)
		}
		if p.max != nil && n > *p.max {
			return fmt.Sprintf("value must have a maximum value of %d", *p.max)
		}
		return ""
	case tBoolean:
		switch strings.ToLower(v) {
		case "0", "1", "true", "false", "yes", "no", "on", "off":
			return ""
		}
		return fmt.Sprintf("type check ('boolean') failed - got '%s'", v)
	}
	if p.maxLen > 0 && len(v) > p.maxLen {
		return fmt.Sprintf("value may only be %d characters long", p.maxLen)
	}
	if len(p.enum) > 0 && !contains(p.enum, v) {
		return fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", v, strings.Join(p.enum, ", "))
	}
	if p.pattern != nil && !p.pattern.MatchString(v) {
		return "value does not match the regex pattern"
	}
	if p.check != nil {
		if err := p.check(v); err != nil {
			return err.Error()
		}
	}
	if p.prop != nil {
		if _, err := p.prop.parse(v); err != nil {
			return err.Error()
		}
	}
	return ""
}

// parse splits a property string and checks each key.
func (ps *propString) parse(v string) (map[string]string, error) {
	out := map[string]string{}
	for i, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			if i != 0 || ps.defaultKey == "" {
				return nil, fmt.Errorf("format error: missing key in '%s'", part)
			}
			k, val = ps.defaultKey, part
		}
		// net0=virtio=AA:BB:... uses the model as key for the MAC address.
		if ps.defaultKey == "model" && contains(netModels, k) {
			out["model"] = k
			k = "macaddr"
		}
		p, known := ps.keys[k]
		if !known {
			return nil, fmt.Errorf("format error: %s: property is not defined in schema", k)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("format error: duplicate key in comma-separated list property: %s", k)
		}
		if msg := p.checkValue(val); msg != "" {
			return nil, fmt.Errorf("format error: %s: %s", k, msg)
		}
		out[k] = val
	}
	for k, p := range ps.keys {
		if _, ok := out[k]; !ok && !p.optional {
			return nil, fmt.Errorf("format error: %s: property is missing and it is not optional", k)
		}
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// flatten turns a JSON request body into the string form PVE validates.
func flatten(raw map[string]json.RawMessage) (map[string]string, error) {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		var b bool
		if err := json.Unmarshal(v, &b); err == nil {
			if b {
				out[k] = "1"
			} else {
				out[k] = "0"
			}
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil {
			out[k] = n.String()
			continue
		}
		return nil, fmt.Errorf("parameter %s: unsupported JSON value %s", k, v)
	}
	return out, nil
}
