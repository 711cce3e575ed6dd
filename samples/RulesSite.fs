/// samples/rules.toml as an F# config: the same rules, compiled by the test project, which checks that it loads to
/// the very config the TOML file loads to. A deny or a redirect cannot be combined with another action here: `Then`
/// says so in its type. Regexes, networks and names are checked when the site is loaded, as in the TOML file.
module Lb.Samples.RulesSite

open Lb.Rules.ConfigDsl

let site =
    site {
        http "127.0.0.1:18080"
        https "127.0.0.1:18443" (tls "tls/lb.crt" "tls/lb.key")
        rule (Host "old.example.com") (Redirect(MovedPermanently, "https://www.example.com${path}${query}"))
        app "app1" {
            server "app1_1" "127.0.0.1:9101"
            server "app1_2" "127.0.0.1:9102"
            server "app1_3" "127.0.0.1:9103" // runs the beta build
            // Beta testers reach app1_3 only, and the answer says so.
            rule (HeaderEquals("X-Beta", "1")) (Forward [ Pin [ "app1_3" ]; SetResponseHeader("X-Beta-Server", "app1_3") ])
            // Everyone else never reaches the beta build.
            rule Always (Forward [ Pin [ "app1_1"; "app1_2" ] ])
        }
        app "app2" {
            server "app2_1" "127.0.0.1:9201"
            server "app2_2" "127.0.0.1:9202"
            // The admin pages answer the internal networks only (paths within the app).
            rule (PathPrefix "/admin" &&& Not(Source [ "10.0.0.0/8"; "192.168.0.0/16" ])) (Deny 403)
        }
        app "app3" {
            server "app3_1" "127.0.0.1:9301"
            // Maintenance: lb's 503 page for every request.
            rule Always (Deny 503)
        }
    }
