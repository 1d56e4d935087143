package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// Codes the gateway adds to the domain's (transfer.Code). Like those, they
// are stable snake_case strings documented in docs/api.md.
const (
	CodeBadRequest           transfer.Code = "bad_request"
	CodeMalformedJSON        transfer.Code = "malformed_json"
	CodeUnknownField         transfer.Code = "unknown_field"
	CodeDuplicateField       transfer.Code = "duplicate_field"
	CodeInvalidField         transfer.Code = "invalid_field"
	CodeBodyTooLarge         transfer.Code = "body_too_large"
	CodeUnsupportedMediaType transfer.Code = "unsupported_media_type"
	CodeNotFound             transfer.Code = "not_found"
	CodeMethodNotAllowed     transfer.Code = "method_not_allowed"
	CodeUnauthorized         transfer.Code = "unauthorized"
	CodeForbidden            transfer.Code = "forbidden"
	CodeBadCursor            transfer.Code = "bad_cursor"
	CodeAccountConflict      transfer.Code = "account_conflict"
	CodeServiceUnavailable   transfer.Code = "service_unavailable"
	CodeInternal             transfer.Code = "internal_error"
	// CodeOutcomeUnknown: the request was sent to the requests stream but
	// the gateway could not learn whether it was stored. Unlike
	// service_unavailable it does not mean "not stored": retry with the
	// same id, never with a new one.
	CodeOutcomeUnknown transfer.Code = "outcome_unknown"
	// CodeTransferPending is the 2020 API's answer for a request that is
	// stored but whose outcome the gateway did not wait for (the wait ran
	// out, or too many requests were waiting): submit it again with the
	// same id to learn the outcome.
	CodeTransferPending transfer.Code = "transfer_pending"
)

// problemTypePrefix makes a problem's type URI from its code. A URN names
// the code without promising a web page at some host.
const problemTypePrefix = "urn:wallet:problem:"

// problemContentType is RFC 9457's media type for problem documents.
const problemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document. Handlers return it as an error;
// the app's error handler writes it.
type Problem struct {
	Type    string        `json:"type"`
	Title   string        `json:"title"`
	Status  int           `json:"status"`
	Detail  string        `json:"detail"`
	Code    transfer.Code `json:"code"`
	Field   string        `json:"field,omitempty"`
	TraceID string        `json:"trace_id,omitempty"`
	// Transfer is the decided transfer a rejection or conflict is about.
	Transfer *transferBody `json:"transfer,omitempty"`

	retryAfter int // seconds; sent as Retry-After when positive
}

func (p *Problem) Error() string { return string(p.Code) + ": " + p.Detail }

// problem builds a problem with the status the code implies.
func problem(code transfer.Code, detail string) *Problem {
	status := statusOf(code)
	return &Problem{
		Type:   problemTypePrefix + string(code),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// fieldProblem is a problem about one named request field.
func fieldProblem(code transfer.Code, field, detail string) *Problem {
	p := problem(code, detail)
	p.Field = field
	return p
}

// unavailable is the answer when a dependency cannot be reached: the client
// may retry the same request (ids make that safe).
func unavailable(detail string) *Problem {
	p := problem(CodeServiceUnavailable, detail)
	p.retryAfter = 1
	return p
}

// domainProblem turns a domain rule violation into a problem, naming the
// field the rule is about.
func domainProblem(e *transfer.Error) *Problem {
	return fieldProblem(e.Code, fieldOf(e.Code), sentence(e))
}

// statusOf maps a code to its HTTP status. Every domain rejection not listed
// is a business-rule failure, 422.
func statusOf(code transfer.Code) int {
	switch code {
	case CodeBadRequest, CodeMalformedJSON, CodeUnknownField, CodeDuplicateField, CodeInvalidField, CodeBadCursor,
		transfer.CodeInvalidAmount, transfer.CodeInvalidMetadata, transfer.CodeInvalidReference:
		return fiber.StatusBadRequest
	case CodeUnauthorized:
		return fiber.StatusUnauthorized
	case CodeForbidden:
		return fiber.StatusForbidden
	case CodeNotFound:
		return fiber.StatusNotFound
	case CodeMethodNotAllowed:
		return fiber.StatusMethodNotAllowed
	case transfer.CodeTransferIDConflict, CodeAccountConflict:
		return fiber.StatusConflict
	case CodeBodyTooLarge:
		return fiber.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return fiber.StatusUnsupportedMediaType
	case CodeServiceUnavailable:
		return fiber.StatusServiceUnavailable
	case CodeInternal:
		return fiber.StatusInternalServerError
	case CodeOutcomeUnknown:
		return fiber.StatusGatewayTimeout
	case CodeTransferPending:
		return fiber.StatusAccepted
	}
	return fiber.StatusUnprocessableEntity
}

// fieldOf names the v1 request field a domain code is about.
func fieldOf(code transfer.Code) string {
	switch code {
	case transfer.CodeTransferIDIsEmpty, transfer.CodeTransferIDConflict:
		return "id"
	case transfer.CodeSenderAccountIDIsEmpty, transfer.CodeSenderAccountNotExist,
		transfer.CodeSenderAccountWrongCurrency, transfer.CodeInsufficientFunds:
		return "from_account_id"
	case transfer.CodeReceiverAccountIDIsEmpty, transfer.CodeReceiverAccountNotExist,
		transfer.CodeReceiverAccountWrongCurrency, transfer.CodeAccountsMustBeDifferent:
		return "to_account_id"
	case transfer.CodeAccountIDIsEmpty, transfer.CodeAccountNotExist, transfer.CodeAccountWrongCurrency:
		return "account_id"
	case transfer.CodeTransferAmountMustBePositive, transfer.CodeInvalidAmount:
		return "amount"
	case transfer.CodeCurrencyNotSupported:
		return "currency"
	case transfer.CodeInvalidMetadata:
		return "metadata"
	case transfer.CodeInvalidReference, transfer.CodeReferenceAlreadyUsed:
		return "reference"
	}
	return ""
}

// errorHandler is the app's single exit for errors: problems are written as
// they are, Fiber's own errors (no route, body too large) become problems,
// and anything else is logged and answered with a bare 500 that leaks
// nothing about the cause.
func (g *Gateway) errorHandler(c *fiber.Ctx, err error) error {
	var p *Problem
	var fe *fiber.Error
	switch {
	case errors.As(err, &p):
	case errors.As(err, &fe):
		p = fiberProblem(fe)
	default:
		g.log.Error("unhandled error", zap.String("trace_id", traceID(c)),
			zap.String("method", c.Method()), zap.String("path", c.Path()), zap.Error(err))
		p = problem(CodeInternal, "The server could not process the request.")
	}
	return writeProblem(c, p)
}

func fiberProblem(fe *fiber.Error) *Problem {
	switch fe.Code {
	case fiber.StatusNotFound:
		return problem(CodeNotFound, "No such resource.")
	case fiber.StatusMethodNotAllowed:
		return problem(CodeMethodNotAllowed, "The resource does not support this method.")
	case fiber.StatusRequestEntityTooLarge:
		return problem(CodeBodyTooLarge, "The request body is larger than the limit.")
	case fiber.StatusServiceUnavailable:
		return unavailable("The service is not available.")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		// Fiber's own 4xx messages describe the request, never the server.
		p := problem(CodeBadRequest, fe.Message)
		p.Status, p.Title = fe.Code, http.StatusText(fe.Code)
		return p
	}
	return problem(CodeInternal, "The server could not process the request.")
}

func writeProblem(c *fiber.Ctx, p *Problem) error {
	if p.TraceID == "" {
		p.TraceID = traceID(c)
	}
	if p.retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.retryAfter))
	}
	if p.Status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="wallet"`)
	}
	if err := c.Status(p.Status).JSON(p); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, problemContentType)
	return nil
}

// decode reads a request body with form, as a problem when it cannot.
func decode(form *wire.Form, body []byte) (transfer.Request, *Problem) {
	r, err := form.Read(body)
	if err != nil {
		return r, readProblem(r.Kind, err)
	}
	return r, nil
}

// readProblem words why a request body could not be read (wire.Form.Read)
// as a problem. kind is the request's.
func readProblem(kind transfer.Kind, err *wire.Error) *Problem {
	field := err.Field
	switch err.Kind {
	case wire.Unknown:
		return fieldProblem(CodeUnknownField, field, "Unknown field "+strconv.Quote(field)+".")
	case wire.Duplicate:
		return fieldProblem(CodeDuplicateField, field, "Field "+strconv.Quote(field)+" appears more than once.")
	case wire.BadMetadata:
		return fieldProblem(transfer.CodeInvalidMetadata, field, "Field \"metadata\" must be an object of strings: "+err.Detail+".")
	case wire.WrongType:
		if field == "timeout_seconds" {
			return fieldProblem(transfer.CodeInvalidTimeout, field, "Field \"timeout_seconds\" must be a whole number of seconds, not "+err.Value.Kind.String()+".")
		}
		return typeProblem(field, err.Value.Kind)
	case wire.Missing:
		return fieldProblem(transfer.CodeInvalidAmount, field, "Field \"amount\" is required: a decimal string such as \"100.25\".")
	case wire.Zero:
		whole := "the whole hold"
		if kind == transfer.KindReversal {
			whole = "what is left to reverse"
		}
		return fieldProblem(transfer.CodeTransferAmountMustBePositive, field, "The amount must be greater than zero; leave it out for "+whole+".")
	case wire.Invalid:
		switch {
		case err.Err != nil: // an amount, metadata or a reference
			return fieldProblem(err.Err.Code, field, sentence(err.Err))
		case field == "timeout_seconds":
			return fieldProblem(transfer.CodeInvalidTimeout, field, "Field \"timeout_seconds\" must be a whole number of seconds, at most 2592000 (30 days).")
		}
		return fieldProblem(CodeInvalidField, field, "Field "+strconv.Quote(field)+" must be a UUID such as \"3f1c9d2e-8b4a-4c1e-9f2a-6d5b7e8c9a0b\".")
	}
	switch {
	case err.Detail == "empty":
		return problem(CodeMalformedJSON, "The request body is empty; a JSON object is required.")
	case err.Detail == "not an object":
		return problem(CodeMalformedJSON, "The request body must be a JSON object.")
	case strings.HasPrefix(err.Detail, "at byte"):
		return problem(CodeMalformedJSON, "Malformed JSON "+err.Detail+".")
	}
	return problem(CodeMalformedJSON, "Malformed JSON: "+err.Detail+".")
}

// typeProblem reports a value of the wrong type for a string field; amounts
// have their own code.
func typeProblem(field string, got wire.Kind) *Problem {
	code := CodeInvalidField
	if field == "amount" {
		code = transfer.CodeInvalidAmount
	}
	return fieldProblem(code, field, "Field "+strconv.Quote(field)+" must be a string, not "+got.String()+".")
}

// sentence renders a domain error's detail as a sentence for a problem.
func sentence(err error) string {
	detail := err.Error()
	var e *transfer.Error
	if errors.As(err, &e) && e.Detail != "" {
		detail = e.Detail
	}
	return strings.ToUpper(detail[:1]) + detail[1:] + "."
}

// clip shortens a hostile value before it is echoed back or logged.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
