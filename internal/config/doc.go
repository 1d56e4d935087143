// Package config defines every setting of the wallet's binaries in one table:
// its flag, its WALLET_* environment variable, its default and which programs
// use it. Load parses flags and the environment (flags win over the
// environment, the environment over defaults), validates everything up front
// and fails with one line naming the setting at fault.
//
// The table is also what the documentation and the deployment manifests are
// checked against, so a setting cannot be renamed in one place only.
package config
