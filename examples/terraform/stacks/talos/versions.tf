terraform {
  required_version = ">= 1.6"

  required_providers {
    proxmox = {
      source  = "bpg/proxmox"
      version = ">= 0.66"
    }
    talos = {
      source  = "siderolabs/talos"
      version = ">= 0.7"
    }
  }
}

provider "proxmox" {
  endpoint = var.proxmox_endpoint
  # The API token comes from PROXMOX_VE_API_TOKEN, never from a file in the repo.
  insecure = false
}
