package directory

import (
	"strings"
	"testing"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

// discoveryCase is one targets configuration and the hosts it must select
// from the Samba lab's seed (../shared/lab/samba-ad-lab.sh). The same cases
// run against the in-process ldapd seeded identically and against the real
// Samba DC, so both must agree with each other and with this table.
type discoveryCase struct {
	name    string
	targets func(base string) config.Targets
	want    string // short host names with reasons, sorted; see summarize
}

func boolp(b bool) *bool { return &b }

var discoveryCases = []discoveryCase{
	{"domain controllers (writable and RODC)", func(string) config.Targets { return config.Targets{} },
		"dc1[dc] dc2[dc] dc3[dc] rodc1[rodc]"},
	{"nested group by name, disabled member excluded", func(string) config.Targets {
		return config.Targets{DomainControllers: boolp(false), Groups: []string{"Tier0 Servers"}}
	}, "srv-app-01[group Tier0 Servers] srv-t0-01[group Tier0 Servers]"},
	{"nested group by DN", func(b string) config.Targets {
		return config.Targets{DomainControllers: boolp(false), Groups: []string{"CN=Tier0 Nested Servers,OU=Tier0," + b}}
	}, "srv-app-01[group CN=Tier0 Nested Servers,OU=Tier0,{base}]"},
	{"OU", func(b string) config.Targets {
		return config.Targets{DomainControllers: boolp(false), OUs: []string{"OU=Tier0," + b}}
	}, "srv-t0-01[ou OU=Tier0,{base}] srv-t0-02[ou OU=Tier0,{base}]"},
	{"raw filter", func(string) config.Targets {
		return config.Targets{DomainControllers: boolp(false), Filters: []string{"(operatingSystem=*2016*)"}}
	}, "srv-app-02[filter (operatingSystem=*2016*)]"},
	{"filter cannot bring back a disabled computer", func(string) config.Targets {
		return config.Targets{DomainControllers: boolp(false), Filters: []string{"(cn=OLD-SRV-01)"}}
	}, ""},
	{"static hosts, one known to AD", func(string) config.Targets {
		return config.Targets{DomainControllers: boolp(false), Hosts: []string{"Jump01.Example.NET.", "srv-app-02.{dns}"}}
	}, "jump01.example.net[static] srv-app-02[static]"},
	{"exclusions by name, DN and filter", func(b string) config.Targets {
		return config.Targets{Exclude: []string{"dc2", "CN=DC3,OU=Domain Controllers," + b, "(operatingSystem=Samba)"}}
	}, "rodc1[rodc]"},
	{"everything, reasons merged", func(b string) config.Targets {
		return config.Targets{Groups: []string{"Tier0 Servers"}, OUs: []string{"OU=Tier0," + b},
			Filters: []string{"(dNSHostName=dc2.*)"}, Hosts: []string{"dc3.{dns}"}, Exclude: []string{"srv-app-01.{dns}"}}
	}, "dc1[dc] dc2[dc,filter (dNSHostName=dc2.*)] dc3[dc,static] rodc1[rodc] srv-t0-01[group Tier0 Servers,ou OU=Tier0,{base}] srv-t0-02[ou OU=Tier0,{base}]"},
}

// expand fills {base} and {dns} placeholders.
func expand(s, base, dns string) string {
	return strings.NewReplacer("{base}", base, "{dns}", dns).Replace(s)
}

func expandTargets(t config.Targets, base, dns string) config.Targets {
	ex := func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, expand(s, base, dns))
		}
		return out
	}
	t.Groups, t.OUs, t.Filters, t.Hosts, t.Exclude = ex(t.Groups), ex(t.OUs), ex(t.Filters), ex(t.Hosts), ex(t.Exclude)
	return t
}

// summarize renders hosts as "short[reason,reason]" sorted by name, with the
// lab's DNS domain stripped.
func summarize(hosts []inventory.Host, dns string) string {
	var parts []string
	for _, h := range hosts {
		var rs []string
		for _, r := range h.Reasons {
			rs = append(rs, r.String())
		}
		parts = append(parts, strings.TrimSuffix(h.Name, "."+dns)+"["+strings.Join(rs, ",")+"]")
	}
	return strings.Join(parts, " ")
}

// runCases runs every discovery case with a config made by mk and returns
// the results by case name.
func runCases(t *testing.T, base, dns string, mk func(config.Targets) config.Directory, password string) map[string][]inventory.Host {
	t.Helper()
	got := map[string][]inventory.Host{}
	for _, tc := range discoveryCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mk(expandTargets(tc.targets(base), base, dns))
			d, err := New(cfg, password, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Discover(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if s, want := summarize(res.Hosts, dns), expand(tc.want, base, dns); s != want {
				t.Fatalf("hosts:\n got %s\nwant %s\nwarnings: %q", s, want, res.Warnings)
			}
			got[tc.name] = res.Hosts
		})
	}
	return got
}
