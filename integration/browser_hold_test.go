package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserApproveHeldDelete runs a live connection with "hold User delete": a DELETE
// through Caddy is held, the review page shows it (held count, status badge, hold reason,
// Approve button), a person approves it through the confirmation in headless Chromium,
// and the IdP's next identical retry is forwarded: the backend no longer has the user.
// Screenshots go to a directory under $TMPDIR (logged).
func TestBrowserApproveHeldDelete(t *testing.T) {
	skipWithoutChromium(t)
	be := startBackend(t)
	c := startHold(t, be)
	ada := seedUser(t, be, "ada@example.com")

	status, out, h := c.scim(t, http.MethodDelete, "/Users/"+ada, nil)
	id := h.Get("X-Scim-Shadow-Record")
	if status != http.StatusTooManyRequests || id == "" {
		t.Fatalf("held DELETE: %d %v %s", status, h, out)
	}

	b := startBrowser(t)
	b.run("connections",
		chromedp.Navigate(c.URL+"/review/ui/connections"),
		chromedp.WaitVisible(`table.connections`, chromedp.ByQuery),
		b.shot("hold-connections"))
	if s := b.text(`#conn-acme td.held`); !strings.Contains(s, "1 held") {
		t.Errorf("held column reads %q", s)
	}

	// The held count leads to the held requests.
	b.run("held requests",
		chromedp.Click(`#conn-acme td.held a`, chromedp.ByQuery),
		chromedp.WaitVisible(`article#r`+id, chromedp.ByQuery),
		b.shot("hold-requests"))
	if loc := b.location(); !strings.HasSuffix(loc, "requests?status=held") {
		t.Errorf("held link led to %s", loc)
	}
	if s := b.text(`article#r` + id); !strings.Contains(s, "held") || !strings.Contains(s, "Held because: hold delete") ||
		!strings.Contains(s, "Approve…") || !strings.Contains(s, "Ignore…") {
		t.Errorf("held request reads:\n%s", s)
	}
	if b.count(`#approve-all`) != 1 {
		t.Errorf("no Approve all shown button on the held filter")
	}

	// Approve, through the confirmation.
	b.run("approve confirmation",
		chromedp.Click(`article#r`+id+` button.approve`, chromedp.ByQuery),
		chromedp.WaitVisible(`section.confirm`, chromedp.ByQuery),
		b.shot("hold-confirm-approve"))
	if s := b.text(`section.confirm`); !strings.Contains(s, "the IdP's next identical retry will be forwarded to the backend") ||
		!strings.Contains(s, "Held because: hold delete") {
		t.Errorf("confirmation says:\n%s", s)
	}
	b.run("approve",
		chromedp.Click(`#confirm`, chromedp.ByQuery),
		chromedp.WaitVisible(`dl.facts .status-approved`, chromedp.ByQuery),
		b.shot("hold-approved"))
	if b.count(`button.approve`) != 0 || b.count(`button.ignore`) != 1 {
		t.Errorf("approved request: %d approve, %d ignore buttons", b.count(`button.approve`), b.count(`button.ignore`))
	}
	if !backendHas(t, be, "/Users/"+ada) {
		t.Fatal("approving sent the DELETE before the IdP retried")
	}

	// The IdP's next identical retry is forwarded.
	if status, out, _ := c.scim(t, http.MethodDelete, "/Users/"+ada, nil); status != http.StatusNoContent {
		t.Fatalf("approved retry: %d %s", status, out)
	}
	if backendHas(t, be, "/Users/"+ada) {
		t.Fatal("the approved DELETE was not applied")
	}
	b.run("forwarded",
		chromedp.Reload(),
		chromedp.WaitVisible(`dl.facts .status-forwarded`, chromedp.ByQuery),
		b.shot("hold-forwarded"))
	if s := b.text(`dl.facts`); !strings.Contains(s, "forwarded") || !strings.Contains(s, "backend answered 204") {
		t.Errorf("forwarded request's facts:\n%s", s)
	}
	if b.count(`button.approve`)+b.count(`button.ignore`) != 0 {
		t.Errorf("a forwarded request still offers a decision")
	}
}
