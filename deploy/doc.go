// Package deploy holds the deployment assets of mcpwatch (Dockerfiles,
// compose, Kubernetes manifests; docs/deploy.md). Its tests check them
// against the code: every YAML parses, the shipped configs load through the
// real collector and analyzer config loaders, images are pinned, and the
// Kubernetes workloads are hardened and consistent with the configs.
package deploy
