module Lb.Rules.Tests.ExplainTests

open System
open Xunit
open Lb.Rules

let private config =
    """
[listen]
https = "127.0.0.1:18443"
[tls]
cert = "lb.crt"
key = "lb.key"
[health]
rise = 3
[apps.app1]
balance = "leastconn"
health = { path = "/ping", interval = "1s", expect = "2xx,404" }
servers = [ { name = "app1_1", address = "127.0.0.1:9101", weight = 2 },
            { name = "app1_2", address = "127.0.0.1:9102", maxconn = 100 } ]
[apps.app2]
persistence = { cookie = "" }
servers = [ { name = "app2_1", address = "127.0.0.1:9201" } ]
"""

let private snapshot =
    match Config.parseText config "/etc/lb" (fun _ -> true) with
    | Ok c -> Snapshot c
    | Error e -> failwithf "%A" e

let private explain url cookie = Explain.describeUrl (snapshot, url, cookie)

let private lineStarting (prefix: string) (lines: string array) =
    match lines |> Array.tryFind (fun l -> l.TrimStart().StartsWith prefix) with
    | Some l -> l.Trim()
    | None -> failwithf "no line starting with %s in:\n%s" prefix (String.Join("\n", lines))

[<Fact>]
let ``a valid cookie shows the pinned server and no Set-Cookie`` () =
    let lines = explain "https://site/app1/x" "a=b; SRVID=app1_2"
    Assert.Equal("persistence: cookie SRVID=app1_2 found → pinned to app1_2 (no Set-Cookie)", lineStarting "persistence:" lines)
    Assert.Equal("request Cookie: a=b; SRVID=app1_2", lineStarting "request Cookie:" lines)
    Assert.Equal("Cookie: a=b", lineStarting "Cookie:" lines)

[<Fact>]
let ``an unknown cookie is ignored with the reason, and a new cookie is set`` () =
    let line = explain "https://site/app1/x" "SRVID=app2_1" |> lineStarting "persistence:"
    Assert.StartsWith("persistence: ignored: unknown value 'app2_1' (forged or other app) → balance (leastconn) + new cookie: Set-Cookie: SRVID=", line)

[<Fact>]
let ``no cookie shows the algorithm and the Set-Cookie line`` () =
    let line = explain "https://site/app1/x" "" |> lineStarting "persistence:"
    Assert.Equal(
        "persistence: no cookie → balance (leastconn) + Set-Cookie: SRVID=app1_1; Path=/app1/; HttpOnly; Secure; SameSite=Lax (for app1_1, the first pick)",
        line
    )

[<Fact>]
let ``persistence off, balance, servers and health settings are listed`` () =
    let app2 = explain "https://site/app2/" "SRVID=app2_1"
    Assert.Equal("persistence: off (cookie = \"\") → balance (roundrobin), no cookie", lineStarting "persistence:" app2)
    Assert.Equal("Cookie: SRVID=app2_1", lineStarting "Cookie:" app2)
    let app1 = explain "https://site/app1/" ""
    Assert.Equal(
        "balance: leastconn among app1_1 (127.0.0.1:9101, weight 2), app1_2 (127.0.0.1:9102, weight 1, maxconn 100)",
        lineStarting "balance:" app1
    )
    Assert.Equal(
        "health: GET /ping expect 200-299,404 every 1s ±5% (timeout 1s, rise 3, fall 2), User-Agent: lb-healthcheck/1.0",
        lineStarting "health:" app1
    )

[<Fact>]
let ``the CLI takes an optional cookie for explain`` () =
    Assert.Equal(
        ExplainCommand("lb.toml", "https://site/app1/", "SRVID=app1_1; a=b", [||], ""),
        Cli.parse [| "explain"; "-c"; "lb.toml"; "https://site/app1/"; "--cookie"; "SRVID=app1_1; a=b" |]
    )
    Assert.Equal(ExplainCommand("lb.toml", "https://site/app1/", "", [||], ""), Cli.parse [| "explain"; "-c"; "lb.toml"; "https://site/app1/" |])
