// Package deployments holds the wallet's deployment files: the Kubernetes
// kustomize base in kubernetes/, the NATS configuration that
// docker-compose.yml mounts and the NATS Helm chart's values in nats/. Its
// tests parse every manifest and check the probes, ports and WALLET_*
// settings against internal/config, and the NATS users' permissions against
// the roles in internal/natsbus.
package deployments
