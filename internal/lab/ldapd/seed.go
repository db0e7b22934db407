package ldapd

import (
	"fmt"
	"strings"
)

// SambaLabBindUser is the low-privileged bind account the Samba lab creates.
const SambaLabBindUser = "svc-watch"

// SeedSambaLab adds to d the objects that ../shared/lab/samba-ad-lab.sh
// seeds into its real Samba DC (seed_ldif and seed_members_ldif), plus the
// objects a fresh Samba domain already has that discovery and SID resolution
// touch: the containers, the DC itself (DC1, operatingSystem "Samba"),
// Administrator, the bind user and the privileged groups. One discovery
// against d and against the Samba lab must give the same hosts. The domain
// SID differs from Samba's; RIDs of built-in objects are the real ones.
func SeedSambaLab(d *Directory) error {
	b, dom := d.BaseDN(), d.DNSDomain()
	sid := d.DomainSID()
	type obj struct {
		dn    string
		attrs map[string][]string
	}
	computer := func(cn, parent, uac, os string) obj {
		return obj{"CN=" + cn + "," + parent + "," + b, map[string][]string{
			"objectClass":        {"computer"},
			"sAMAccountName":     {cn + "$"},
			"dNSHostName":        {strings.ToLower(cn) + "." + dom},
			"userAccountControl": {uac},
			"operatingSystem":    {os},
		}}
	}
	group := func(dn, sam, rid, gtype string) obj {
		g := obj{dn, map[string][]string{
			"objectClass": {"group"}, "sAMAccountName": {sam}, "groupType": {gtype},
		}}
		if rid != "" {
			g.attrs["objectSid"] = []string{rid}
		}
		return g
	}
	objs := []obj{
		{"CN=Users," + b, map[string][]string{"objectClass": {"container"}}},
		{"CN=Computers," + b, map[string][]string{"objectClass": {"container"}}},
		{"CN=Builtin," + b, map[string][]string{"objectClass": {"builtinDomain"}}},
		{"OU=Domain Controllers," + b, map[string][]string{"objectClass": {"organizationalUnit"}}},
		{"CN=Administrator,CN=Users," + b, map[string][]string{
			"objectClass": {"user"}, "sAMAccountName": {"Administrator"}, "userAccountControl": {"512"},
			"objectSid": {sid + "-500"},
		}},
		{"CN=" + SambaLabBindUser + ",CN=Users," + b, map[string][]string{
			"objectClass": {"user"}, "sAMAccountName": {SambaLabBindUser}, "userAccountControl": {"66048"},
			"userPrincipalName": {SambaLabBindUser + "@" + dom},
		}},
		group("CN=Domain Admins,CN=Users,"+b, "Domain Admins", sid+"-512", "-2147483646"),
		group("CN=Enterprise Admins,CN=Users,"+b, "Enterprise Admins", sid+"-519", "-2147483640"),
		group("CN=Schema Admins,CN=Users,"+b, "Schema Admins", sid+"-518", "-2147483640"),
		group("CN=Administrators,CN=Builtin,"+b, "Administrators", "S-1-5-32-544", "-2147483643"),
		computer("DC1", "OU=Domain Controllers", "532480", "Samba"),

		// seed_ldif
		{"OU=Tier0," + b, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"Tier0"}}},
		group("CN=Tier0 Servers,OU=Tier0,"+b, "Tier0 Servers", "", "-2147483646"),
		group("CN=Tier0 Nested Servers,OU=Tier0,"+b, "Tier0 Nested Servers", "", "-2147483646"),
		computer("DC2", "OU=Domain Controllers", "532480", "Windows Server 2022 Standard"),
		computer("DC3", "OU=Domain Controllers", "532480", "Windows Server 2019 Standard"),
		computer("RODC1", "OU=Domain Controllers", "83890176", "Windows Server 2022 Standard"),
		computer("SRV-T0-01", "OU=Tier0", "4096", "Windows Server 2022 Standard"),
		computer("SRV-T0-02", "OU=Tier0", "4096", "Windows Server 2019 Standard"),
		computer("SRV-APP-01", "CN=Computers", "4096", "Windows Server 2022 Standard"),
		computer("SRV-APP-02", "CN=Computers", "4096", "Windows Server 2016 Standard"),
		computer("OLD-SRV-01", "CN=Computers", "4098", "Windows Server 2012 R2 Standard"),
	}
	for _, o := range objs {
		if err := d.Add(o.dn, o.attrs); err != nil {
			return fmt.Errorf("seed samba lab: %w", err)
		}
	}
	members := []struct{ group, member string }{
		{"CN=Administrators,CN=Builtin,", "CN=Domain Admins,CN=Users,"},
		{"CN=Administrators,CN=Builtin,", "CN=Enterprise Admins,CN=Users,"},
		{"CN=Administrators,CN=Builtin,", "CN=Administrator,CN=Users,"},
		{"CN=Domain Admins,CN=Users,", "CN=Administrator,CN=Users,"},
		{"CN=Enterprise Admins,CN=Users,", "CN=Administrator,CN=Users,"},
		{"CN=Schema Admins,CN=Users,", "CN=Administrator,CN=Users,"},
		// seed_members_ldif
		{"CN=Tier0 Servers,OU=Tier0,", "CN=SRV-T0-01,OU=Tier0,"},
		{"CN=Tier0 Servers,OU=Tier0,", "CN=Tier0 Nested Servers,OU=Tier0,"},
		{"CN=Tier0 Servers,OU=Tier0,", "CN=OLD-SRV-01,CN=Computers,"},
		{"CN=Tier0 Nested Servers,OU=Tier0,", "CN=SRV-APP-01,CN=Computers,"},
	}
	for _, m := range members {
		if err := d.AddValues(m.group+b, "member", m.member+b); err != nil {
			return fmt.Errorf("seed samba lab: %w", err)
		}
	}
	return nil
}
