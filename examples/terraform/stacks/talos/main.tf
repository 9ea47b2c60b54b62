locals {
  # A VM is cloned from the profile's template when imgpipe reports one with a VMID
  # (imgpipe upload template, or build); otherwise it boots the profile's ISO.
  template_node = {
    for name, n in var.nodes : name => [
      for pve_node, t in var.imgpipe_profiles[n.profile].templates : pve_node if t.vmid != null
    ]
  }
  node_ip = { for name, n in var.nodes : name => split("/", n.address)[0] }
}

resource "proxmox_virtual_environment_vm" "node" {
  for_each = var.nodes

  name      = each.key
  node_name = each.value.pve_node
  vm_id     = each.value.vm_id
  tags = [
    "talos",
    each.value.profile,
    replace(var.imgpipe_profiles[each.value.profile].talos_version, ".", "-"),
  ]

  machine = "q35"
  bios    = "ovmf"

  dynamic "clone" {
    for_each = length(local.template_node[each.key]) > 0 ? [local.template_node[each.key][0]] : []
    content {
      node_name = clone.value
      vm_id     = var.imgpipe_profiles[each.value.profile].templates[clone.value].vmid
      full      = true
    }
  }

  dynamic "cdrom" {
    for_each = length(local.template_node[each.key]) == 0 ? [each.value.pve_node] : []
    content {
      file_id   = var.imgpipe_profiles[each.value.profile].iso_volume_ids[cdrom.value]
      interface = "ide2"
    }
  }

  agent {
    enabled = true
  }

  cpu {
    cores = each.value.cores
    type  = "x86-64-v2-AES"
  }

  memory {
    dedicated = each.value.memory_mib
  }

  disk {
    datastore_id = var.vm_datastore
    interface    = "scsi0"
    size         = each.value.disk_gib
  }

  network_device {
    bridge = var.bridge
  }

  operating_system {
    type = "l26"
  }

  # nocloud images read their address from the cloud-init drive.
  initialization {
    datastore_id = var.vm_datastore
    ip_config {
      ipv4 {
        address = each.value.address
        gateway = var.gateway
      }
    }
  }
}

resource "talos_machine_secrets" "this" {
  talos_version = var.imgpipe_talos_version
}

data "talos_machine_configuration" "node" {
  for_each = var.nodes

  cluster_name       = var.cluster_name
  cluster_endpoint   = var.cluster_endpoint
  machine_type       = var.imgpipe_profiles[each.value.profile].role
  machine_secrets    = talos_machine_secrets.this.machine_secrets
  talos_version      = var.imgpipe_profiles[each.value.profile].talos_version
  kubernetes_version = var.imgpipe_kubernetes_version
}

data "talos_client_configuration" "this" {
  cluster_name         = var.cluster_name
  client_configuration = talos_machine_secrets.this.client_configuration
  endpoints            = [for name, n in var.nodes : local.node_ip[name] if var.imgpipe_profiles[n.profile].role == "controlplane"]
}

resource "talos_machine_configuration_apply" "node" {
  for_each = var.nodes

  client_configuration        = talos_machine_secrets.this.client_configuration
  machine_configuration_input = data.talos_machine_configuration.node[each.key].machine_configuration
  node                        = local.node_ip[each.key]
  # imgpipe's patch pins machine.install.image to the profile's installer and
  # carries mirrors, GPU settings, labels, taints and the site's own patches;
  # Talos validated it for this release, role and platform at export time.
  config_patches = [
    for p in var.imgpipe_profiles[each.value.profile].machine_config_patches : file("${path.root}/${p}")
  ]

  depends_on = [proxmox_virtual_environment_vm.node]
}

resource "talos_machine_bootstrap" "this" {
  client_configuration = talos_machine_secrets.this.client_configuration
  node                 = data.talos_client_configuration.this.endpoints[0]

  depends_on = [talos_machine_configuration_apply.node]
}
