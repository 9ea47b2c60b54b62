output "talosconfig" {
  description = "talosconfig for talosctl."
  value       = data.talos_client_configuration.this.talos_config
  sensitive   = true
}

output "installers" {
  description = "The installer each VM runs (what talosctl upgrade --image should keep)."
  value       = { for name, n in var.nodes : name => var.imgpipe_profiles[n.profile].installer }
}
