package pvetest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func nowUnix() int64 { return time.Now().Unix() }

// driveKey reports whether a top-level VM parameter is a drive.
func driveKey(k string) bool {
	for _, p := range []string{"scsi", "ide", "sata", "virtio", "efidisk", "tpmstate"} {
		if rest, ok := strings.CutPrefix(k, p); ok {
			if _, err := strconv.Atoi(rest); err == nil {
				return true
			}
		}
	}
	return false
}

// checkDrives applies the volume rules PVE checks before it starts the create task:
// allocation storages must hold images, import sources must be images or import
// volumes (never iso), CD-ROMs must be iso volumes. It returns param errors and the
// volumes the task must find.
func (s *Server) checkDrives(node string, vals map[string]string) (map[string]string, []string) {
	errs := map[string]string{}
	var needed []string
	for k, v := range vals {
		if !driveKey(k) {
			continue
		}
		sp, ok := qemuCreateSpec().lookup(k)
		if !ok || sp.prop == nil {
			continue
		}
		var props map[string]string
		if k == "efidisk0" {
			props, _ = qemuCreateSpec().params["efidisk0"].prop.parse(v)
		} else {
			props, _ = sp.prop.parse(v)
		}
		file := props["file"]
		if props["media"] == "cdrom" {
			if file != "none" && file != "cdrom" {
				st, rest, _ := strings.Cut(file, ":")
				if s.storage(st).Name == "" || !strings.HasPrefix(rest, "iso/") {
					errs[k] = fmt.Sprintf("volume '%s' is not an ISO image", file)
					continue
				}
				needed = append(needed, file)
			}
			continue
		}
		st, size, _ := strings.Cut(file, ":")
		if s.storage(st).Name == "" {
			errs[k] = fmt.Sprintf("storage '%s' does not exist", st)
			continue
		}
		if _, err := strconv.ParseFloat(size, 64); err == nil && !contains(s.storage(st).Content, "images") {
			errs[k] = fmt.Sprintf("storage '%s' does not support vm images", st)
			continue
		}
		if src := props["import-from"]; src != "" {
			sst, rest, _ := strings.Cut(src, ":")
			typ, _, _ := strings.Cut(rest, "/")
			if typ != "import" && typ != "images" && !strings.HasPrefix(rest, "vm-") {
				errs[k] = fmt.Sprintf("import-from: '%s' has wrong type '%s' - needs to be 'images' or 'import'", src, typ)
				continue
			}
			if s.storage(sst).Name == "" {
				errs[k] = fmt.Sprintf("import-from: storage '%s' does not exist", sst)
				continue
			}
			needed = append(needed, src)
		}
	}
	return errs, needed
}

func (s *Server) handleCreateVM(w http.ResponseWriter, r *http.Request, path, node string) {
	vals, ok := checked(w, r, qemuCreateSpec(), map[string]string{"node": node})
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errs, _ := s.checkDrives(node, vals); len(errs) > 0 {
		writeParamErrors(w, errs)
		return
	}
	_, needed := s.checkDrives(node, vals)
	vmid, _ := strconv.Atoi(vals["vmid"])
	if vm, ok := s.vms[vmid]; ok {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("unable to create VM %d - VM %d already exists on node '%s'", vmid, vmid, vm.Node))
		return
	}
	t := s.newTask(node, "qmcreate", strconv.Itoa(vmid))
	for _, vol := range needed {
		st, _, _ := strings.Cut(vol, ":")
		if _, ok := s.volumes[s.scope(node, st)+"|"+vol]; !ok {
			t.exit = fmt.Sprintf("unable to create VM %d - volume '%s' does not exist", vmid, vol)
			s.replyTask(w, t)
			return
		}
	}
	cfg := map[string]string{}
	for k, v := range vals {
		if k != "node" && k != "vmid" && k != "start" {
			cfg[k] = v
		}
	}
	t.apply = func() {
		s.vms[vmid] = &VM{Node: node, VMID: vmid, Name: vals["name"], Tags: vals["tags"], Config: cfg,
			Template: vals["template"] == "1"}
	}
	t.log = append(t.log, fmt.Sprintf("create VM %d on node %s", vmid, node))
	s.applyTaskFaults(http.MethodPost, path, t)
	s.replyTask(w, t)
}

func (s *Server) handleVM(w http.ResponseWriter, r *http.Request, path, node, id string, rest []string) {
	var sp spec
	switch {
	case match(rest, "config") && r.Method == http.MethodGet:
		sp = simpleSpec(map[string]param{"current": {kind: tBoolean, optional: true},
			"snapshot": {kind: tString, optional: true, maxLen: 40}}, "node", "vmid")
	case match(rest, "status", "current") && r.Method == http.MethodGet:
		sp = simpleSpec(nil, "node", "vmid")
	case match(rest, "template") && r.Method == http.MethodPost:
		sp = simpleSpec(map[string]param{"disk": {kind: tString, optional: true, pattern: anchored(`(ide[0-3]|scsi\d+|virtio\d+|sata[0-5]|efidisk0|tpmstate0)`)}}, "node", "vmid")
	case len(rest) == 0 && r.Method == http.MethodDelete:
		sp = simpleSpec(map[string]param{"purge": {kind: tBoolean, optional: true}, "skiplock": {kind: tBoolean, optional: true},
			"destroy-unreferenced-disks": {kind: tBoolean, optional: true}}, "node", "vmid")
	default:
		writeStatus(w, http.StatusNotImplemented, "not implemented")
		return
	}
	if _, ok := checked(w, r, sp, map[string]string{"node": node, "vmid": id}); !ok {
		return
	}
	vmid, _ := strconv.Atoi(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	vm, ok := s.vms[vmid]
	if !ok || vm.Node != node {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist", node, vmid))
		return
	}
	switch {
	case len(rest) == 0:
		t := s.newTask(node, "qmdestroy", id)
		t.apply = func() { delete(s.vms, vmid) }
		s.applyTaskFaults(r.Method, path, t)
		s.replyTask(w, t)
	case rest[0] == "config":
		cfg := map[string]any{"digest": "0123456789abcdef0123456789abcdef01234567"}
		for k, v := range vm.Config {
			cfg[k] = v
		}
		if vm.Template {
			cfg["template"] = 1
		}
		writeData(w, cfg)
	case rest[0] == "status":
		writeData(w, map[string]any{"vmid": vm.VMID, "name": vm.Name, "status": "stopped", "template": b2i(vm.Template), "tags": vm.Tags})
	default:
		if vm.Template {
			writeStatus(w, http.StatusInternalServerError, "you can't convert a template to a template")
			return
		}
		t := s.newTask(node, "qmtemplate", id)
		t.apply = func() { vm.Template = true; vm.Config["template"] = "1" }
		s.applyTaskFaults(r.Method, path, t)
		s.replyTask(w, t)
	}
}
