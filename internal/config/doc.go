// Package config binds every setting of the wallet's binaries to a flag and
// a WALLET_* environment variable. The components own their settings: the
// gateway's, the worker's and natsbus's Config types hold them with their
// defaults and validation, and config embeds those types, so a default is
// written once, in the package that uses it, and --help shows that value.
// What belongs to no component (the process: ports, database, logging,
// NATS connection, the embedded server) is config's own.
//
// The setting table keeps each setting's name, environment variable, usage,
// programs and whether it is secret. Load parses flags and the environment
// (flags win over the environment, the environment over defaults),
// validates everything up front and fails with one line naming the setting
// at fault.
//
// The table is also what the documentation and the deployment manifests are
// checked against, so a setting cannot be renamed in one place only.
package config
