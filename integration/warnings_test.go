package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// warningsCaddyfile maps favorite_color to favoriteColor and warns when neither is sent.
// debug makes the events app log every event it emits.
const warningsCaddyfile = `{
	debug
	admin {{ADMIN}}
	scim_shadow {
		{{STORE}}
		mode_refresh 200ms
	}
}
:{{PORT}} {
	route /scim/v2/* {
		scim_shadow {
			connection acme
			mode {{MODE}}
			map User {
				favoriteColor {
					from favorite_color
					warn_if_missing
				}
			}
		}
		reverse_proxy {{BACKEND}}
	}
	handle_path /review/* {
		scim_shadow_review
	}
}
`

// eventually polls check until it returns "" or the deadline passes, then fails with its
// last answer: the warning bookkeeping runs off the request path.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func warningUser(name, extra string) string {
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name +
		`","name":{"givenName":"G","familyName":"F"},"password":"hunter2","active":true` + extra + `}`
}

func TestWarningsEndToEnd(t *testing.T) {
	for storeName, store := range storeKinds(t) {
		for _, mode := range []string{"live", "preview"} {
			t.Run(storeName+"/"+mode, func(t *testing.T) {
				testWarnings(t, strings.NewReplacer("{{STORE}}", store(t), "{{MODE}}", mode).Replace(warningsCaddyfile), mode)
			})
		}
	}
}

func testWarnings(t *testing.T, caddyfile, mode string) {
	be := startBackend(t)
	c := startCaddy(t, caddyfile, be)
	live := mode == "live"

	// write sends a write and returns the resource id (live) or the record id (preview).
	write := func(method, path, body string) string {
		t.Helper()
		status, out, h := c.scim(t, method, path, body)
		if live {
			if status != http.StatusOK && status != http.StatusCreated {
				t.Fatalf("%s %s: %d %s", method, path, status, out)
			}
			return fmt.Sprint(decode(t, out)["id"])
		}
		if status != http.StatusTooManyRequests || h.Get("X-Scim-Shadow-Record") == "" {
			t.Fatalf("%s %s: %d %s", method, path, status, out)
		}
		return h.Get("X-Scim-Shadow-Record")
	}
	review := func(path string) map[string]any {
		t.Helper()
		status, m := c.review(t, http.MethodGet, path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, status, m)
		}
		return m
	}

	// Ada lacks the attribute (a null favorite_color, which the rules drop), twice; Bob
	// sends it under the fallback name; Cy lacks it.
	adaFirst := write(http.MethodPost, "/Users", warningUser("ada@example.com", `,"favorite_color":null`))
	adaID := "u-ada"
	if live {
		adaID = adaFirst
	}
	write(http.MethodPost, "/Users", warningUser("bob@example.com", `,"favorite_color":"teal"`))
	write(http.MethodPost, "/Users", warningUser("cy@example.com", ""))
	write(http.MethodPut, "/Users/"+adaID, warningUser("Ada@Example.com", `,"title":"Engineer"`))

	eventually(t, "warning users", func() string {
		users := review("/connections/acme/warnings/users")["users"].([]any)
		var got []string
		for _, u := range users {
			u := u.(map[string]any)
			got = append(got, fmt.Sprintf("%s:%v:%v", strings.ToLower(u["key"].(string)), u["count"], u["attributes"]))
		}
		if want := "[ada@example.com:2:[favoriteColor] cy@example.com:1:[favoriteColor]]"; fmt.Sprint(got) != want {
			return fmt.Sprintf("users = %v, want %s", got, want)
		}
		return ""
	})

	attrs := review("/connections/acme/warnings")["attributes"].([]any)
	if len(attrs) != 1 {
		t.Fatalf("attributes = %v", attrs)
	}
	fav := attrs[0].(map[string]any)
	fallbacks := fav["fallbacks"].([]any)
	if fav["attribute"] != "favoriteColor" || fav["resource_type"] != "User" || fav["users_missing"] != float64(2) ||
		len(fallbacks) != 1 || fallbacks[0].(map[string]any)["source"] != "favorite_color" || fallbacks[0].(map[string]any)["count"] != float64(1) {
		t.Errorf("summary = %v", fav)
	}
	conns := review("/connections")["connections"].([]any)
	if len(conns) != 1 || conns[0].(map[string]any)["warnings"] != float64(2) {
		t.Errorf("connections = %v", conns)
	}
	if page := review("/connections/acme/warnings/users?limit=1"); len(page["users"].([]any)) != 1 || page["next_cursor"] == "" {
		t.Errorf("a page of one = %v", page)
	}

	// Ada's warning, with the request that opened it: as sent (password redacted) and
	// as the backend would get it.
	ada := review("/connections/acme/warnings/users/" + url.PathEscape("ADA@example.com"))
	ws := ada["warnings"].([]any)
	if len(ws) != 1 {
		t.Fatalf("ada = %v", ada)
	}
	w := ws[0].(map[string]any)
	if w["attribute"] != "favoriteColor" || w["count"] != float64(2) || w["first_seen_at"] == w["last_seen_at"] {
		t.Errorf("ada's warning = %v", w)
	}
	ex, _ := w["example"].(map[string]any)
	if ex == nil {
		t.Fatalf("no example: %v", w)
	}
	raw, _ := json.Marshal(ex)
	for _, secret := range []string{"hunter2", backendToken} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("example exposes %q: %s", secret, raw)
		}
	}
	orig := ex["original"].(map[string]any)
	origBody := orig["body"].(map[string]any)
	effBody := ex["effective"].(map[string]any)["body"].(map[string]any)
	if orig["method"] != "POST" || orig["url"] != "/scim/v2/Users" || origBody["userName"] != "ada@example.com" ||
		origBody["password"] != "[REDACTED]" {
		t.Errorf("original = %v", orig)
	}
	if _, ok := origBody["favorite_color"]; !ok {
		t.Errorf("original body is not as sent: %v", origBody)
	}
	if _, ok := effBody["favorite_color"]; ok || effBody["userName"] != "ada@example.com" || effBody["favoriteColor"] != nil {
		t.Errorf("effective body = %v", effBody)
	}
	exID := fmt.Sprint(ex["record_id"])
	rec := review("/connections/acme/records/" + exID)
	if live && rec["status"] != "observed" {
		t.Errorf("live example record = %v", rec)
	}
	if !live && exID != adaFirst {
		t.Errorf("preview example = record %s, want the recorded write %s", exID, adaFirst)
	}
	if live {
		// Live traffic keeps one record per new warning, not one per request.
		records := review("/connections/acme/records")["records"].([]any)
		if len(records) != 2 {
			t.Errorf("live mode kept %d records, want 2 (ada's and cy's examples)", len(records))
		}
		if n := be.Writes(); n != 4 {
			t.Errorf("backend received %d writes, want 4", n)
		}
	}

	// Ada's next write carries the attribute: her warning resolves; Cy's stays.
	write(http.MethodPut, "/Users/"+adaID, warningUser("ada@example.com", `,"favorite_color":"red"`))
	eventually(t, "resolution", func() string {
		users := review("/connections/acme/warnings/users")["users"].([]any)
		if len(users) != 1 || users[0].(map[string]any)["key"] != "cy@example.com" {
			return fmt.Sprintf("users = %v", users)
		}
		return ""
	})
	if ws := review("/connections/acme/warnings/users/ada@example.com")["warnings"].([]any); len(ws) != 0 {
		t.Errorf("ada still has warnings: %v", ws)
	}
	conns = review("/connections")["connections"].([]any)
	if conns[0].(map[string]any)["warnings"] != float64(1) {
		t.Errorf("connections after the resolution = %v", conns)
	}
	fav = review("/connections/acme/warnings")["attributes"].([]any)[0].(map[string]any)
	if fav["users_missing"] != float64(1) || fav["fallbacks"].([]any)[0].(map[string]any)["count"] != float64(2) {
		t.Errorf("summary after the resolution = %v", fav)
	}

	// One event per warning opened (ada, cy), none for the repeats or the resolution.
	eventually(t, "warning events", func() string {
		if n := strings.Count(c.log.String(), `"name":"scim_shadow.warning"`); n < 2 {
			return fmt.Sprintf("%d warning events, want 2", n)
		}
		return ""
	})
	if n := strings.Count(c.log.String(), `"name":"scim_shadow.warning"`); n != 2 {
		t.Errorf("%d warning events, want 2", n)
	}
	if !strings.Contains(c.log.String(), `"attribute":"favoriteColor"`) {
		t.Error("event data without the attribute")
	}
}
