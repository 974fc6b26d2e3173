package admin

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 description of every /api/v1 route, served at
// GET /api/openapi.json. cmd/sluice's tests check it against the routes
// the running process registers.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the embedded OpenAPI document.
func OpenAPI() []byte { return openAPI }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
