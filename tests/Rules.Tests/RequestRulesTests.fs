module Lb.Rules.Tests.RequestRulesTests

open System
open System.Net
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private forAll (g: FsCheck.Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private allFilesExist (_: string) = true

let private load text =
    match Config.parseText text "/etc/lb" allFilesExist with
    | Ok config -> config
    | Error errors -> failwithf "%s" (String.Join("\n", errors |> List.map string))

let private errorsOf text =
    match Config.parseText text "/etc/lb" allFilesExist with
    | Error errors -> errors
    | Ok _ -> failwith "expected errors"

// ---- Conditions -----------------------------------------------------------------------------------

[<Property(MaxTest = 500)>]
let ``not inverts every condition`` () =
    forAll (Gen.zip (ruleCondition 3) ruleRequest) (fun (c, r) ->
        RequestRules.matches (Condition.Not c) r = not (RequestRules.matches c r))

[<Property(MaxTest = 500)>]
let ``all holds when each part holds, any when one does`` () =
    forAll (Gen.zip (Gen.nonEmptyListOf (ruleCondition 1) |> Gen.resize 4) ruleRequest) (fun (cs, r) ->
        RequestRules.matches (Condition.All cs) r = List.forall (fun c -> RequestRules.matches c r) cs
        && RequestRules.matches (Condition.Any cs) r = List.exists (fun c -> RequestRules.matches c r) cs)

[<Property(MaxTest = 500)>]
let ``the explanation of a condition agrees with its verdict`` () =
    forAll (Gen.zip (ruleCondition 3) ruleRequest) (fun (c, r) -> fst (RequestRules.explain c r) = RequestRules.matches c r)

[<Fact>]
let ``conditions read what they say`` () =
    let request =
        { Method = "POST"
          Host = "API.example.com:8443"
          Path = "/admin/users"
          PublicPath = "/app2/admin/users"
          Query = "?q=1"
          Headers = [| "x-beta", " 1 "; "Cookie", "a=b; beta=yes" |]
          Client = RequestRules.clientAddress "::ffff:10.1.2.3" }
    let holds c = RequestRules.matches c request
    let cidr text = match RequestRules.cidr text with Ok c -> c | Error e -> failwith e
    let pattern text = match RequestRules.pattern text with Ok p -> p | Error e -> failwith e
    Assert.True(holds (Condition.PathPrefix "/admin"))
    Assert.True(holds (Condition.PathSegment "users"))
    Assert.False(holds (Condition.PathSegment "user"))
    Assert.True(holds (Condition.PathMatches(pattern "^/admin/[a-z]+$")))
    Assert.True(holds (Condition.Host "api.example.com"))
    Assert.False(holds (Condition.Host "example.com"))
    Assert.True(holds (Condition.Method [ "GET"; "POST" ]))
    Assert.False(holds (Condition.Method [ "post" ]))
    Assert.True(holds (Condition.Header("X-Beta", ValueTest.Equals "1")))
    Assert.False(holds (Condition.Header("X-Env", ValueTest.Present)))
    Assert.True(holds (Condition.Cookie("beta", ValueTest.Equals "yes")))
    Assert.False(holds (Condition.Cookie("Beta", ValueTest.Present)))
    Assert.True(holds (Condition.Source [ cidr "10.0.0.0/8" ]))
    Assert.False(holds (Condition.Source [ cidr "192.168.0.0/16"; cidr "2001:db8::/32" ]))
    Assert.False(holds (Condition.Source [ cidr "10.0.0.0/8" ] |> fun c -> Condition.Not c))

[<Property>]
let ``every address is in the network of each of its prefixes, and host bits are refused`` (a: byte, b: byte, c: byte, d: byte, p: byte) =
    let prefix = int p % 33
    let address = IPAddress([| a; b; c; d |])
    let bits = (uint32 a <<< 24) ||| (uint32 b <<< 16) ||| (uint32 c <<< 8) ||| uint32 d
    let mask = if prefix = 0 then 0u else UInt32.MaxValue <<< (32 - prefix)
    let network = bits &&& mask
    let text = $"{IPAddress([| byte (network >>> 24); byte (network >>> 16); byte (network >>> 8); byte network |])}/{prefix}"
    match RequestRules.cidr text with
    | Ok net ->
        RequestRules.contains net address
        && RequestRules.contains net (address.MapToIPv6())
        && (network = bits || Result.isError (RequestRules.cidr $"{address}/{prefix}"))
    | Error e -> failwith e

[<Fact>]
let ``a redirect location expands host, path and query`` () =
    let request =
        { Method = "GET"; Host = "old.example.com"; Path = "/x"; PublicPath = "/app1/x"; Query = "?a=1"; Headers = [||]; Client = None }
    Assert.Equal("https://www.example.com/app1/x?a=1", RequestRules.expandLocation ("https://www.example.com${path}${query}", request))
    Assert.Equal("//old.example.com", RequestRules.expandLocation ("//${host}", request))
    Assert.NotEmpty(RequestRules.checkLocation "/x${nope}")
    Assert.NotEmpty(RequestRules.checkLocation "ftp://x/")
    Assert.NotEmpty(RequestRules.checkLocation "/a b")
    Assert.Empty(RequestRules.checkLocation "https://${host}/maintenance${query}")

// ---- Decisions ------------------------------------------------------------------------------------

/// `routingConfig` with `rules` as app1's (servers app1_1 and app1_2).
let private withApp1Rules (rules: Rule array) =
    { routingConfig with Apps = routingConfig.Apps |> Array.map (fun a -> if a.Name = "app1" then { a with Rules = rules } else a) }

let private app1Rules = ruleList "apps.app1.rules" [] [ "app1_1"; "app1_2" ]

/// An https request with the headers and client of a rule request, to `prefix` + its path.
let private factsFor (prefix: string) (r: RuleRequest) : RequestFacts =
    { IsHttps = true
      Host = r.Host
      Method = r.Method
      RawTarget = prefix + r.Path + r.Query
      ClientAddress = r.Client |> Option.map string |> Option.defaultValue ""
      ForwardedFor = None
      Headers = r.Headers }

/// A decision without the app's config in it (which holds the rules being compared).
type private Shape =
    | Redirected of int * string * string
    | Rejected of RejectReason
    | Forwarded of app: int * target: string * rule: string option * pin: int array * edits: HeaderEdit array * HeaderEdit array * ResponseContext

let private decide (config: LbConfig) (facts: RequestFacts) =
    match Routing.decide (Snapshot config) facts with
    | Redirect(s, l, why) -> Redirected(s, l, why)
    | Reject reason -> Rejected reason
    | Forward p -> Forwarded(p.AppIndex, p.BackendTarget, p.Rule, p.Pin, p.RequestEdits, p.ResponseEdits, p.Response)

[<Property(MaxTest = 300)>]
let ``the first rule that matches decides, the ones after it are never read`` () =
    forAll (Gen.zip app1Rules ruleRequest) (fun (rules, r) ->
        let facts = factsFor "/app1" r
        let decided = decide (withApp1Rules rules) facts
        match Routing.decide routingSnapshot facts with
        | Forward plan ->
            let within = { r with Path = fst (Routing.splitTarget plan.BackendTarget) }
            match rules |> Array.tryFindIndex (fun rule -> RequestRules.matches rule.When within) with
            | Some k -> decided = decide (withApp1Rules [| rules[k] |]) facts && decided = decide (withApp1Rules rules[0..k]) facts
            | None -> decided = decide routingConfig facts
        | _ -> decided = decide routingConfig facts)

let private isDeny (action: RuleAction) =
    match action with
    | RuleAction.Deny _ -> true
    | _ -> false

[<Property(MaxTest = 300)>]
let ``a deny never forwards`` () =
    forAll (Gen.zip lbConfig ruleRequest) (fun (config, r) ->
        let snapshot = Snapshot config
        config.Apps
        |> Array.forall (fun app ->
            let facts = factsFor app.Prefix r
            match List.tryLast (Routing.ruleTrace snapshot facts), Routing.decide snapshot facts with
            | Some(rule, true, _), Reject(Denied(status, _)) when isDeny rule.Then -> rule.Then = RuleAction.Deny status
            | Some(rule, true, _), _ -> not (isDeny rule.Then)
            | _, Reject(Denied _) -> false
            | _ -> true))

[<Property(MaxTest = 300)>]
let ``a rule of app A never changes a request for app B`` () =
    forAll (Gen.zip app1Rules ruleRequest) (fun (rules, r) ->
        [ "/app2"; "/app10"; "/App1"; "/app1x" ]
        |> List.forall (fun prefix ->
            let facts = factsFor prefix r
            decide (withApp1Rules rules) facts = decide routingConfig facts))

[<Fact>]
let ``global rules come before routing, app rules see the path within the app`` () =
    let config =
        load
            """
[listen]
http = "127.0.0.1:8080"
plain_http = "proxy"
[[rules]]
when = { host = "old.example.com" }
then = { redirect = 301, location = "https://www.example.com${path}${query}" }
[[rules]]
when = { header = { name = "X-Api" } }
then = { route = "api", set_request_header = { "X-Routed" = "yes" } }
[apps.app1]
servers = [ { name = "a", address = "10.0.0.1:80" }, { name = "b", address = "10.0.0.2:80" } ]
[[apps.app1.rules]]
when = { path_prefix = "/admin" }
then = { deny = 403 }
[apps.api]
servers = [ { name = "api1", address = "10.0.0.9:80" } ]
"""
    let facts target host headers =
        { IsHttps = false; Host = host; Method = "GET"; RawTarget = target; ClientAddress = "192.0.2.1"; ForwardedFor = None; Headers = headers }
    let decide config facts = Routing.decide (Snapshot config) facts
    Assert.Equal(
        Redirect(301, "https://www.example.com/app1/x?q", "redirected by rules[0]"),
        decide config (facts "/app1/x?q" "old.example.com" [||])
    )
    Assert.Equal(Reject(Denied(403, "denied by apps.app1.rules[0]")), decide config (facts "/app1/admin/x" "site" [||]))
    match decide config (facts "/app1/public" "site" [||]) with
    | Forward plan -> Assert.Equal((None, "/public"), (plan.Rule, plan.BackendTarget))
    | other -> failwithf "%A" other
    match decide config (facts "/app1/admin" "site" [| "X-Api", "1" |]) with
    | Forward plan ->
        Assert.Equal(("api", "/app1/admin", Some "rules[1]"), (plan.App.Name, plan.BackendTarget, plan.Rule))
        Assert.Equal<HeaderEdit array>([| HeaderEdit.Set("X-Routed", "yes") |], plan.RequestEdits)
        Assert.Equal("", plan.Response.Prefix)
    | other -> failwithf "%A" other

// ---- lb check -------------------------------------------------------------------------------------

[<Fact>]
let ``an unknown header action, a bad regex and an unreachable rule are each reported at their place`` () =
    let errors =
        errorsOf
            """
[listen]
http = "127.0.0.1:8080"
[apps.app1]
servers = [ { name = "app1_1", address = "10.0.0.1:80" } ]

[[apps.app1.rules]]
when = { header = { name = "X-Beta" } }
then = { replace_request_header = { "X-Env" = "beta" } }

[[apps.app1.rules]]
when = { path_regex = "^/(?<=x)admin(" }
then = { deny = 403 }

[[apps.app1.rules]]
then = { allow = true }

[[apps.app1.rules]]
when = { path_prefix = "/late" }
then = { deny = 404 }
"""
    let found = errors |> List.map (fun e -> e.Keyword, e.Line)
    Assert.Equal<(string * int) list>(
        [ "apps.app1.rules[0].then.replace_request_header", 9
          "apps.app1.rules[1].when.path_regex", 12
          "apps.app1.rules[3]", 18 ],
        found
    )
    Assert.Equal("unknown header action", errors[0].Message)
    Assert.Equal("use set_request_header, add_request_header or remove_request_header", errors[0].Hint)
    Assert.StartsWith("bad regex", errors[1].Message)
    Assert.Equal("unreachable: apps.app1.rules[2] above has no when and matches every request", errors[2].Message)
    Assert.All(errors, fun e -> Assert.True(e.Column >= 1))

[<Fact>]
let ``a global rule without when makes every app's rules unreachable`` () =
    let errors =
        errorsOf
            "[listen]\nhttp = \"127.0.0.1:8080\"\n[[rules]]\nthen = { allow = true }\n[apps.a]\nservers = [ { name = \"s\", address = \"10.0.0.1:80\" } ]\n[[apps.a.rules]]\nthen = { deny = 403 }\n[apps.b]\nservers = [ { name = \"s\", address = \"10.0.0.2:80\" } ]\n"
    Assert.Equal<(string * int) list>([ "apps.a.rules", 7 ], errors |> List.map (fun e -> e.Keyword, e.Line))
    Assert.Equal("unreachable: global rules[0] has no when and matches every request first", errors[0].Message)

[<Fact>]
let ``actions that cannot go together, and names that do not exist, are refused`` () =
    let keywords text = errorsOf text |> List.map (fun e -> e.Keyword, e.Message)
    let site rules =
        "[listen]\nhttp = \"127.0.0.1:8080\"\n[apps.app1]\nservers = [ { name = \"s1\", address = \"10.0.0.1:80\" } ]\n" + rules
    let one rules = keywords (site rules) |> List.head
    Assert.Equal(("apps.app1.rules[0].then.pin", "deny cannot be combined with pin"), one "[[apps.app1.rules]]\nthen = { deny = 403, pin = [\"s1\"] }\n")
    Assert.Equal(("apps.app1.rules[0].then.pin", "no server is named 's2'"), one "[[apps.app1.rules]]\nthen = { pin = [\"s2\"] }\n")
    Assert.Equal(("apps.app1.rules[0].then.route", "route belongs in the global [[rules]]"), one "[[apps.app1.rules]]\nthen = { route = \"app1\" }\n")
    Assert.Equal(("rules[0].then.route", "no app is named 'app2'"), one "[[rules]]\nthen = { route = \"app2\" }\n")
    Assert.Equal(("rules[0].then.pin", "pin needs an app: a global rule pins with route"), one "[[rules]]\nthen = { pin = [\"s1\"] }\n")
    Assert.Equal(("rules[0].then.location", "missing"), one "[[rules]]\nthen = { redirect = 302 }\n")
    Assert.Equal(("rules[0].then.deny", "200 is not an error status"), one "[[rules]]\nthen = { deny = 200 }\n")
    Assert.Equal(("rules[0].then.set_request_header.Host", "lb manages Host itself"), one "[[rules]]\nthen = { set_request_header = { Host = \"x\" } }\n")
    Assert.Equal(("rules[0].then", "missing"), one "[[rules]]\nwhen = { host = \"x\" }\n")
    Assert.Equal(
        ("rules[0].when.source", "'10.1.0.0/8': host bits are set below /8: the network is 10.0.0.0/8"),
        one "[[rules]]\nwhen = { source = \"10.1.0.0/8\" }\nthen = { deny = 403 }\n"
    )
    Assert.Equal(("rules[0].when.all", "empty list"), one "[[rules]]\nwhen = { all = [] }\nthen = { deny = 403 }\n")
    Assert.Equal(("rules[0].when.pth_prefix", "unknown key"), one "[[rules]]\nwhen = { pth_prefix = \"/x\" }\nthen = { deny = 403 }\n")

// ---- lb explain and the sample ------------------------------------------------------------------

let private repoRoot = Reliability.repositoryRoot ()

let private sample =
    lazy
        (let file = IO.Path.Combine(repoRoot, "samples", "rules.toml")
         match Config.parseText (IO.File.ReadAllText file) (IO.Path.Combine(repoRoot, "samples")) allFilesExist with
         | Ok config -> Snapshot config
         | Error errors -> failwithf "%s" (String.Join("\n", errors |> List.map string)))

let private explain url headers from =
    Explain.describeRequest (sample.Value, url, "", headers, from) |> List.ofArray

[<Fact>]
let ``explain shows the rule that matched and why each one before it did not`` () =
    let lines = explain "https://site/app2/admin/users" [||] "203.0.113.9"
    Assert.Contains("  rule rules[0]: no match (host site is not old.example.com)", lines)
    Assert.Contains(
        "  rule apps.app2.rules[0]: match (path /admin/users starts with /admin and not: client 203.0.113.9 is not in 10.0.0.0/8, 192.168.0.0/16) → deny 403",
        lines
    )
    Assert.Contains("decision: reject 403", lines)
    let internalLines = explain "https://site/app2/admin/users" [||] "10.1.2.3"
    Assert.Contains("decision: forward to app 'app2'", internalLines)

[<Fact>]
let ``the sample's beta header pins app1_3, everyone else app1_1 and app1_2`` () =
    let beta = explain "https://site/app1/x" [| "X-Beta: 1" |] ""
    Assert.Contains("  rule apps.app1.rules[0]: match (header X-Beta (\"1\") is = \"1\") → forward: pin to app1_3; set_response_header X-Beta-Server: app1_3", beta)
    Assert.Contains("  pinned by apps.app1.rules[0] to app1_3: balance and persistence choose among these only", beta)
    Assert.Contains("(for app1_3, the first pick)", beta |> List.find (fun l -> l.StartsWith "  persistence:"))
    let pinnedElsewhere = Explain.describeRequest (sample.Value, "https://site/app1/x", "SRVID=app1_1", [| "X-Beta: 1" |], "")
    Assert.Contains(pinnedElsewhere, fun l -> l.StartsWith "  persistence: ignored" && l.Contains "(for app1_3, the first pick)")
    let others = explain "https://site/app1/x" [| "X-Beta: 0" |] ""
    Assert.Contains("  rule apps.app1.rules[0]: no match (header X-Beta (\"0\") is not = \"1\")", others)
    Assert.Contains("  pinned by apps.app1.rules[1] to app1_1, app1_2: balance and persistence choose among these only", others)

[<Fact>]
let ``the sample's maintenance rule answers 503 for app3 and nothing else`` () =
    let facts target = { request true target with Headers = [||] }
    Assert.Equal(Reject(Denied(503, "denied by apps.app3.rules[0]")), Routing.decide sample.Value (facts "/app3/anything"))
    match Routing.decide sample.Value (facts "/app2/anything") with
    | Forward plan -> Assert.Equal("app2", plan.App.Name)
    | other -> failwithf "%A" other
    Assert.Equal(
        Redirect(301, "https://www.example.com/app2/x?y", "redirected by rules[0]"),
        Routing.decide sample.Value { facts "/app2/x?y" with Host = "old.example.com" }
    )

[<Fact>]
let ``explain takes headers and a source address on the command line`` () =
    Assert.Equal(
        ExplainCommand("lb.toml", "https://site/app1/", "", [| "X-Beta: 1"; "X-Env: b" |], "10.1.2.3"),
        Cli.parse [| "explain"; "-c"; "lb.toml"; "https://site/app1/"; "--header"; "X-Beta: 1"; "--header"; "X-Env: b"; "--from"; "10.1.2.3" |]
    )

/// The tchar set written out as RFC 9110 §5.6.2 lists it, as the reference for `Token.isToken`.
let private tchars = Set.ofSeq ("!#$%&'*+-.^_`|~0123456789" + String([| 'a' .. 'z' |]) + String([| 'A' .. 'Z' |]))

[<Property(MaxTest = 1000)>]
let ``a token is one or more tchars and nothing else`` () =
    let text =
        Gen.frequency
            [ 1, ArbMap.defaults |> ArbMap.generate<char array> |> Gen.map (fun cs -> String cs)
              2, Gen.elements (Seq.toList tchars @ [ ' '; '"'; '('; ','; '/'; ':'; '\t'; '\r'; 'é'; '\000' ]) |> Gen.arrayOf |> Gen.map String ]
    Prop.forAll (Arb.fromGen text) (fun s -> Token.isToken s = (s <> "" && s |> Seq.forall tchars.Contains))
