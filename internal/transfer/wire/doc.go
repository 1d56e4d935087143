// Package wire reads and checks the request shape that reaches the service
// from outside, over HTTP and through the requests stream: one flat JSON
// object of known keys whose values are strings (a few are numbers, and
// "metadata" is an object of strings), read strictly: one object and
// nothing after it, keys matched case-sensitively, each at most once.
//
// Each body is a Form: the HTTP API's (Transfer, Deposit, Withdrawal, Hold,
// Post, Void, Reversal, and the original API's Legacy) and the stream's
// Envelope. Form.Read reads a body straight into a transfer.Request, or
// returns an *Error naming the field at fault and what is wrong with it,
// so a body means the same thing on both paths. The gateway words the
// error as a problem, the stream as a dead-letter reason, each in its own
// vocabulary, without changing which error a body gets.
//
// The package lives beside transfer rather than in it because a JSON
// scanner is no part of the domain; it imports the standard library,
// decimal, uuid and transfer only, so the gateway can use it without
// importing anything of NATS, and natsbus without importing the gateway.
package wire
