"""Pure builders: validated config in, complete Kubernetes manifests out (no Pulumi runtime)."""
