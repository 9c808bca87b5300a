package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "scim-shadow",
		Usage: "token <connection> [--delete] [--address <admin address>] [--config <path> [--adapter <name>]]",
		Short: "scim-shadow commands: token creates, rotates or deletes a connection's token",
		Long: `
scim-shadow token <connection>:
Asks the running Caddy (through its admin endpoint) for a new bearer token for a
connection and prints it. The token is shown this once: the store keeps only its
SHA-256. Running it again rotates the token (the old one stops working); --delete
removes it. Give the token to the IdP; handlers with "auth token" accept it.
`,
		CobraFunc: func(parent *cobra.Command) {
			cmd := &cobra.Command{
				Use:   "token <connection>",
				Short: "Creates (or rotates) the token of a connection and prints it once",
				Args:  cobra.ExactArgs(1),
				RunE: func(cmd *cobra.Command, args []string) error {
					return runTokenCommand(cmd, args[0])
				},
			}
			cmd.Flags().StringP("config", "c", "", "Configuration file, to find the admin address")
			cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
			cmd.Flags().String("address", "", "Address of the administration endpoint")
			cmd.Flags().Bool("delete", false, "Delete the connection's token instead")
			parent.AddCommand(cmd)
		},
	})
}

// runTokenCommand calls POST (or DELETE) /scim_shadow/connections/{c}/token on the admin API.
func runTokenCommand(cmd *cobra.Command, connection string) error {
	flags := caddycmd.Flags{FlagSet: cmd.Flags()}
	addr, err := caddycmd.DetermineAdminAPIAddress(flags.String("address"), nil, flags.String("config"), flags.String("adapter"))
	if err != nil {
		return fmt.Errorf("finding the admin address: %w", err)
	}
	method := http.MethodPost
	if flags.Bool("delete") {
		method = http.MethodDelete
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, "/scim_shadow/connections/"+url.PathEscape(connection)+"/token", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var out struct {
		Token string `json:"token"`
	}
	if method == http.MethodPost && json.Unmarshal(body, &out) == nil && out.Token != "" {
		fmt.Fprintln(os.Stdout, out.Token)
		fmt.Fprintf(os.Stderr, "token of connection %q: shown once; only its hash is stored\n", connection)
		return nil
	}
	if method == http.MethodDelete {
		fmt.Fprintf(os.Stderr, "token of connection %q deleted\n", connection)
		return nil
	}
	return fmt.Errorf("unexpected answer: %s", body)
}
