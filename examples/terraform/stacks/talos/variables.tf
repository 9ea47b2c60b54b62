# ---------------------------------------------------------------------------
# Written by `imgpipe export terraform` into imgpipe.auto.tfvars.json.
# Terraform loads *.auto.tfvars.json by itself; do not edit that file by hand.
# ---------------------------------------------------------------------------

variable "imgpipe_talos_version" {
  description = "Talos release of imgpipe's lock (v1.12.11)."
  type        = string
}

variable "imgpipe_kubernetes_version" {
  description = "Kubernetes version of imgpipe's lock (1.35.4)."
  type        = string
}

variable "imgpipe_profiles" {
  description = "Per node profile: images, Proxmox volumes and templates, machine-config patches (README: Terraform hand-off)."
  type = map(object({
    role           = string
    installer      = string
    schematic      = string
    talos_version  = string
    platform       = string
    arch           = string
    secureboot     = bool
    iso_volume_ids = map(string)
    templates = map(object({
      name = string
      vmid = number
    }))
    machine_config_patches = list(string)
  }))
}

# ---------------------------------------------------------------------------
# The site's own inputs (terraform.tfvars; see terraform.tfvars.example).
# ---------------------------------------------------------------------------

variable "proxmox_endpoint" {
  description = "Proxmox VE API URL, e.g. https://pve1.example.internal:8006/."
  type        = string
}

variable "cluster_name" {
  description = "Talos/Kubernetes cluster name."
  type        = string
}

variable "cluster_endpoint" {
  description = "Kubernetes API endpoint, e.g. https://10.0.20.100:6443 (a VIP or load balancer)."
  type        = string
}

variable "gateway" {
  description = "IPv4 gateway of the node network."
  type        = string
}

variable "vm_datastore" {
  description = "Proxmox datastore for the VMs' disks."
  type        = string
  default     = "local-lvm"
}

variable "bridge" {
  description = "Proxmox bridge the VMs attach to."
  type        = string
  default     = "vmbr0"
}

variable "nodes" {
  description = "The cluster's VMs, keyed by VM name: which imgpipe profile, which Proxmox node, address and size."
  type = map(object({
    profile    = string
    pve_node   = string
    vm_id      = number
    address    = string # CIDR, e.g. 10.0.20.11/24
    cores      = optional(number, 4)
    memory_mib = optional(number, 8192)
    disk_gib   = optional(number, 40)
  }))
}
