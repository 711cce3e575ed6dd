/// samples/three-apps.toml as an F# config: the classic setup of the seed (Apache + HAProxy + keepalived) as one
/// typed value. The test project compiles this file, so CI proves it still type-checks, and a test proves it loads
/// to the very config the TOML file loads to. Load it with `ConfigDsl.parse samplesDir File.Exists ThreeApps.site`.
module Lb.Samples.ThreeApps

open Lb.Rules
open Lb.Rules.ConfigDsl

/// HAProxy `backend NAME` with three servers on consecutive ports: the seed's app1_1..app1_3 and so on.
let private threeServers (name: string) (firstPort: int) =
    app name {
        for i in 1..3 do
            server $"{name}_{i}" $"127.0.0.1:{firstPort + i - 1}"
    }

let site =
    site {
        // HAProxy `global: node lb1` (the second balancer runs the same site with "lb2").
        node "lb1"
        // Apache's two virtual hosts: port 80 only redirects to https, port 443 terminates TLS.
        http "127.0.0.1:18080"
        https "127.0.0.1:18443" { tls "tls/lb.crt" "tls/lb.key" with ChainFile = Some "tls/chain.crt" }
        // HAProxy `defaults`: retries 3, option redispatch, contimeout 5000, clitimeout/srvtimeout 50000.
        retries 3
        redispatch true
        timeoutConnect (seconds 5)
        timeoutClient (seconds 50)
        timeoutServer (seconds 50)
        // `acl want_appN path_dir appN` + `use_backend appN if want_appN` + the prefix rewrites: implied by the name.
        threeServers "app1" 9101
        threeServers "app2" 9201
        threeServers "app3" 9301
    }
