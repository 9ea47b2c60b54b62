package clustertest

import (
	"encoding/json"
	"fmt"
)

// Node describes a node for NodeJSON.
type Node struct {
	Name, Address string
	ControlPlane  bool
	// OSImage defaults to "Talos (<Talos>)".
	Talos, OSImage string
	Kubelet        string // "v1.30.3"
	Schematic      string // extensions.talos.dev/schematic; "" leaves the annotation out
	Labels         map[string]string
	GPUs           int // nvidia.com/gpu capacity
}

// NodeJSON renders n the way kube-apiserver serves a Talos node (fields as a Talos
// v1.9 node reports them: labels, annotations, addresses, capacity, conditions,
// nodeInfo), for KubeAPI.
func NodeJSON(n Node) json.RawMessage {
	labels := map[string]string{
		"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
		"kubernetes.io/arch": "amd64", "kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux",
	}
	if n.ControlPlane {
		labels["node-role.kubernetes.io/control-plane"] = ""
		labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
	}
	for k, v := range n.Labels {
		labels[k] = v
	}
	ann := map[string]string{
		"node.alpha.kubernetes.io/ttl":                           "0",
		"volumes.kubernetes.io/controller-managed-attach-detach": "true",
		"talos.dev/owned-labels":                                 "[]",
	}
	if n.Schematic != "" {
		ann["extensions.talos.dev/schematic"] = n.Schematic
	}
	os := n.OSImage
	if os == "" {
		os = "Talos (" + n.Talos + ")"
	}
	capacity := map[string]string{"cpu": "4", "ephemeral-storage": "99833232Ki", "hugepages-2Mi": "0", "memory": "8148176Ki", "pods": "110"}
	if n.GPUs > 0 {
		capacity["nvidia.com/gpu"] = fmt.Sprint(n.GPUs)
	}
	obj := map[string]any{
		"kind": "Node", "apiVersion": "v1",
		"metadata": map[string]any{
			"name": n.Name, "uid": fmt.Sprintf("6f1c2a1e-0000-4000-8000-%012x", len(n.Name)*7919),
			"resourceVersion": "1042", "creationTimestamp": "2026-11-02T09:14:07Z",
			"labels": labels, "annotations": ann,
		},
		"spec": map[string]any{"podCIDR": "10.244.0.0/24", "podCIDRs": []string{"10.244.0.0/24"}},
		"status": map[string]any{
			"capacity": capacity, "allocatable": capacity,
			"conditions": []map[string]any{
				{"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
				{"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
				{"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
				{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"},
			},
			"addresses": []map[string]string{
				{"type": "InternalIP", "address": n.Address},
				{"type": "Hostname", "address": n.Name},
			},
			"daemonEndpoints": map[string]any{"kubeletEndpoint": map[string]int{"Port": 10250}},
			"nodeInfo": map[string]string{
				"machineID": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "systemUUID": "4c4c4544-0042-3610-8051-b4c04f333532",
				"bootID": "0c5f7a8e-2e45-4d8e-9a8b-7f1f2c3d4e5f", "kernelVersion": "6.12.18-talos",
				"osImage": os, "containerRuntimeVersion": "containerd://2.0.3",
				"kubeletVersion": n.Kubelet, "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
			},
		},
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}
