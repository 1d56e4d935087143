// Package wire reads and checks the request shape that reaches the service
// from outside, over HTTP and through the requests stream: one flat JSON
// object of known keys whose values are strings (a few are numbers, and
// "metadata" is an object of strings), read strictly: one object and
// nothing after it, keys matched case-sensitively, each at most once.
//
// The gateway and the stream's decoder both read with Reader, parse ids
// with transfer.ParseID, and share the field readers here, so a body means
// the same thing on both paths. Each maps this package's errors to its own
// vocabulary (problem codes, dead-letter reasons) without changing which
// error a body gets.
//
// The package lives beside transfer rather than in it because a JSON
// scanner is no part of the domain; it imports the standard library,
// decimal, uuid and transfer only, so the gateway can use it without
// importing anything of NATS, and natsbus without importing the gateway.
package wire
