package proxmox

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// TemplateSpec is a Talos VM template.
type TemplateSpec struct {
	Node        string
	VMID        int
	Name        string
	DiskStorage string
	Bridge      string
	Cores       int
	MemoryMiB   int
	// DiskSizeGiB sizes the empty disk of an ISO-boot template; an imported disk
	// keeps the image's size (grow it when cloning).
	DiskSizeGiB int
	// ImportFrom is the import volume for scsi0 (PVE >= 8.4); ISO is the boot
	// CD-ROM when import is missing. Exactly one is set.
	ImportFrom string
	ISO        string
	// Agent enables the QEMU guest agent (the image has siderolabs/qemu-guest-agent).
	Agent       bool
	Tags        []string
	Description string
}

// Options renders the spec as POST /nodes/{node}/qemu parameters. Talos needs
// q35 + OVMF with a 4m EFI disk, x86-64-v2 (the API default kvm64 is too old),
// no memory hotplug, and a serial console for its logs.
func (s TemplateSpec) Options() []proxmox.VirtualMachineOption {
	o := []proxmox.VirtualMachineOption{
		{Name: "name", Value: s.Name},
		{Name: "ostype", Value: "l26"},
		{Name: "machine", Value: "q35"},
		{Name: "bios", Value: "ovmf"},
		{Name: "efidisk0", Value: s.DiskStorage + ":1,efitype=4m,pre-enrolled-keys=0"},
		{Name: "cpu", Value: "x86-64-v2-AES"},
		{Name: "cores", Value: s.Cores},
		{Name: "memory", Value: strconv.Itoa(s.MemoryMiB)},
		{Name: "scsihw", Value: "virtio-scsi-single"},
		{Name: "net0", Value: "virtio,bridge=" + s.Bridge + ",firewall=0"},
		{Name: "serial0", Value: "socket"},
		{Name: "tags", Value: strings.Join(s.Tags, ";")},
		{Name: "onboot", Value: 0},
	}
	if s.ImportFrom != "" {
		o = append(o,
			proxmox.VirtualMachineOption{Name: "scsi0", Value: s.DiskStorage + ":0,import-from=" + s.ImportFrom + ",iothread=1,discard=on,ssd=1"},
			proxmox.VirtualMachineOption{Name: "boot", Value: "order=scsi0"})
	} else {
		o = append(o,
			proxmox.VirtualMachineOption{Name: "scsi0", Value: fmt.Sprintf("%s:%d,iothread=1,discard=on,ssd=1", s.DiskStorage, s.DiskSizeGiB)},
			proxmox.VirtualMachineOption{Name: "ide2", Value: s.ISO + ",media=cdrom"},
			proxmox.VirtualMachineOption{Name: "boot", Value: "order=scsi0;ide2"})
	}
	if s.Agent {
		o = append(o, proxmox.VirtualMachineOption{Name: "agent", Value: "enabled=1"})
	}
	if s.Description != "" {
		o = append(o, proxmox.VirtualMachineOption{Name: "description", Value: s.Description})
	}
	return o
}

// VMInfo is a VM as /cluster/resources lists it.
type VMInfo struct {
	VMID     int       `json:"vmid"`
	Name     string    `json:"name"`
	Node     string    `json:"node"`
	Template intOrBool `json:"template"`
	Tags     string    `json:"tags"`
}

// TagList splits PVE's tag string.
func (v VMInfo) TagList() []string {
	return strings.FieldsFunc(v.Tags, func(r rune) bool { return r == ';' || r == ',' || r == ' ' })
}

// HasTags reports whether the VM carries every tag in want.
func (v VMInfo) HasTags(want ...string) bool {
	have := map[string]bool{}
	for _, t := range v.TagList() {
		have[t] = true
	}
	for _, t := range want {
		if !have[t] {
			return false
		}
	}
	return true
}

// VMs lists the cluster's VMs and templates.
func (c *Client) VMs(ctx context.Context) ([]VMInfo, error) {
	var vms []VMInfo
	if err := c.get(ctx, "/cluster/resources?type=vm", &vms); err != nil {
		return nil, fmt.Errorf("listing VMs: %w", err)
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].VMID < vms[j].VMID })
	return vms, nil
}

var tagCleanRE = regexp.MustCompile(`[^a-z0-9_\-+.]+`)

// Tag makes a PVE-valid tag of prefix-value.
func Tag(prefix, value string) string {
	return tagCleanRE.ReplaceAllString(strings.ToLower(prefix+"-"+value), "-")
}

// EnsureTemplate makes the template unless a template with the same identity tags
// exists. A VM at the chosen VMID that imgpipe did not make is never touched; a
// half-made one of ours (tagged, not yet a template) is replaced.
func (c *Client) EnsureTemplate(ctx context.Context, s TemplateSpec, vms []VMInfo, dryRun bool) (Result, error) {
	res := Result{Kind: "template", Node: s.Node, VMID: s.VMID, Name: s.Name}
	var leftover *VMInfo
	for i := range vms {
		v := vms[i]
		if v.HasTags(s.Tags...) && bool(v.Template) {
			res.Action, res.VMID, res.Node = ActionSkipped, v.VMID, v.Node
			return res, nil
		}
		if v.VMID == s.VMID {
			// Only a half-made VM with exactly this template's tags is ours to replace.
			if !v.HasTags(s.Tags...) || bool(v.Template) {
				return res, fail.Usage(fmt.Errorf("%w: VMID %d is %q on %s; set proxmox.template.vmidBase to a free range", ErrVMIDTaken, v.VMID, v.Name, v.Node))
			}
			leftover = &v
		}
	}
	if dryRun {
		res.Action = ActionWouldCreate
		return res, nil
	}
	if leftover != nil {
		c.log.Warn("replacing a half-made template", "vmid", leftover.VMID, "node", leftover.Node)
		if err := c.DeleteVM(ctx, leftover.Node, leftover.VMID); err != nil {
			return res, err
		}
	}
	if err := c.createTemplate(ctx, s); err != nil {
		return res, err
	}
	res.Action = ActionCreated
	return res, nil
}

// createTemplate creates the VM and converts it to a template, one task each. A
// task whose polls failed is asked once more how it ended, and one that succeeded
// counts. After a failed step the half-made VM is removed; when a step's outcome
// stays unknown the VM is left alone (deleting a VM a running task holds would
// fail, and a finished template must never go) and the next run replaces it.
func (c *Client) createTemplate(ctx context.Context, s TemplateSpec) error {
	data := map[string]any{"vmid": s.VMID}
	for _, o := range s.Options() {
		data[o.Name] = o.Value
	}
	steps := []struct {
		what, path string
		data       any
	}{
		{fmt.Sprintf("creating VM %d on %s", s.VMID, s.Node), fmt.Sprintf("/nodes/%s/qemu", s.Node), data},
		{fmt.Sprintf("converting VM %d on %s to a template", s.VMID, s.Node), fmt.Sprintf("/nodes/%s/qemu/%d/template", s.Node, s.VMID), nil},
	}
	for _, st := range steps {
		var upid string
		err := c.post(ctx, st.path, st.data, &upid)
		if err == nil {
			_, err = c.Wait(ctx, upid)
		}
		if err == nil {
			continue
		}
		var te *TaskError
		out := taskOutcome{known: upid == "" || errors.As(err, &te)}
		if !out.known {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			out = c.settle(cctx, upid)
			cancel()
		}
		if out.known && out.ok && ctx.Err() == nil {
			c.log.Warn("task status polls failed, but the task succeeded", "step", st.what, "err", err)
			continue
		}
		if out.known {
			c.removeHalfMade(ctx, s)
		} else {
			c.log.Warn("leaving the VM: its task's outcome is unknown; the next run replaces a half-made one", "vmid", s.VMID, "node", s.Node)
		}
		return fmt.Errorf("%s: %w", st.what, err)
	}
	return nil
}

// removeHalfMade deletes the VM a failed template build left, if it exists and
// is not a template (a finished template is never removed by cleanup).
func (c *Client) removeHalfMade(ctx context.Context, s TemplateSpec) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	vms, err := c.VMs(cctx)
	if err != nil {
		c.log.Warn("checking for a half-made VM", "vmid", s.VMID, "err", err)
		return
	}
	for _, v := range vms {
		if v.VMID == s.VMID && v.HasTags(s.Tags...) && !bool(v.Template) {
			if err := c.DeleteVM(cctx, v.Node, v.VMID); err != nil {
				c.log.Error("removing half-made VM", "vmid", v.VMID, "err", err)
			}
		}
	}
}

// DeleteVM destroys a VM with its disks and waits for the task.
func (c *Client) DeleteVM(ctx context.Context, node string, vmid int) error {
	var upid string
	if err := c.del(ctx, fmt.Sprintf("/nodes/%s/qemu/%d?purge=1&destroy-unreferenced-disks=1", node, vmid), &upid); err != nil {
		return fmt.Errorf("deleting VM %d on %s: %w", vmid, node, err)
	}
	if _, err := c.Wait(ctx, upid); err != nil {
		return fmt.Errorf("deleting VM %d on %s: %w", vmid, node, err)
	}
	return nil
}
