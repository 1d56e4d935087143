package gateway

import (
	"embed"
	"io/fs"
	"path"

	"github.com/gofiber/fiber/v2"
)

// consoleFiles is the operator console: plain HTML, CSS and JavaScript,
// served as they are at /console/. The page holds no data; its script
// reads the API with the bearer token the operator types in, so the files
// themselves are served without a token (a browser cannot send one when
// it opens a page).
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP keeps the console to its own files and its own origin: no
// inline script, nothing loaded from elsewhere, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleTypes are the media types of the console's files, fixed here
// rather than read from the host's mime tables.
var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// console serves GET /console/ and its assets. "/console" (which the
// router also sends here) is redirected to "/console/" so that the page's
// relative links resolve under it.
func (g *Gateway) console(c *fiber.Ctx) error {
	name := c.Params("asset")
	if name == "" {
		if c.Path() != "/console/" {
			return c.Redirect("/console/", fiber.StatusMovedPermanently)
		}
		name = "index.html"
	}
	if !fs.ValidPath(name) || path.Base(name) != name {
		return problem(CodeNotFound, "No such console file.")
	}
	data, err := consoleFiles.ReadFile("console/" + name)
	if err != nil {
		return problem(CodeNotFound, "No such console file.")
	}
	ctype, ok := consoleTypes[path.Ext(name)]
	if !ok {
		return problem(CodeNotFound, "No such console file.")
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderContentSecurityPolicy, consoleCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	// Revalidate every time, so a new release's files are picked up.
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Send(data)
}
