package gateway

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/transfer"
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
