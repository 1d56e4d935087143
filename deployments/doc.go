// Package deployments holds the wallet's deployment files: the Kubernetes
// kustomize base in kubernetes/ and the NATS configuration that
// docker-compose.yml mounts. Its test parses every manifest and checks the
// probes, ports and WALLET_* settings against internal/config.
package deployments
