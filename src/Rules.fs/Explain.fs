namespace Lb.Rules

open System

/// `lb explain -c FILE URL [--cookie "..."]`: the decision for a URL as text, without sending anything anywhere.
[<RequireQualifiedAccess>]
module Explain =
    /// A documentation address (RFC 5737 TEST-NET-3) stands in for the client in explanations.
    let exampleClient = "203.0.113.7"

    /// Splits `https://host/path?q` keeping the target exactly as written (System.Uri would normalise it,
    /// and the normalisation is what `explain` has to show).
    let parseUrl (url: string) : Result<RequestFacts, string> =
        let schemeEnd = url.IndexOf "://"
        if schemeEnd <= 0 then Error "give an absolute URL, like https://site/app1/x"
        else
            let scheme = url.Substring(0, schemeEnd).ToLowerInvariant()
            let rest = url.Substring(schemeEnd + 3)
            let slash = rest.IndexOfAny [| '/'; '?' |]
            let host, target = if slash < 0 then rest, "/" else rest.Substring(0, slash), rest.Substring slash
            let target = if target.StartsWith "?" then "/" + target else target
            if scheme <> "http" && scheme <> "https" then Error $"unsupported scheme '{scheme}'"
            else
                Ok
                    { IsHttps = (scheme = "https")
                      Host = host
                      Method = "GET"
                      RawTarget = target
                      ClientAddress = exampleClient
                      ForwardedFor = None
                      Headers = [||] }

    /// The config word of an algorithm.
    let balanceName (algorithm: BalanceAlgorithm) =
        match algorithm with
        | BalanceAlgorithm.RoundRobin -> "roundrobin"
        | BalanceAlgorithm.LeastConn -> "leastconn"
        | BalanceAlgorithm.RandomTwoChoices -> "random"

    /// The first choice for this request at an idle app, as a freshly started lb makes it: the same function
    /// (`Selection.first`) and the same input (`Selection.idle`) the running lb's first request uses.
    [<CompiledName("FirstSelection")>]
    let firstSelection (plan: ForwardPlan, cookieHeaders: string array, redispatch: bool) : SelectionStep =
        Selection.first (Selection.idle (plan.App, plan.Pin, redispatch, DateTimeOffset.UnixEpoch), cookieHeaders)

    /// Values quoted in explanations are cut short: they come from the client.
    let private quote (value: string) =
        let shown = if value.Length > 40 then value.Substring(0, 40) + "…" else value
        "'" + shown + "'"

    let private cookieWhy (outcome: CookieOutcome) =
        match outcome with
        | PersistenceOff -> "off"
        | NoCookie -> "no cookie"
        | UnknownValue v -> $"ignored: unknown value {quote v} (forged or other app)"
        | NamesServer _ -> "ignored: its server is not usable"

    let private persistenceLines (plan: ForwardPlan) (cookieHeader: string) (secure: bool) (redispatch: bool) =
        let app = plan.App
        let headers = if String.IsNullOrEmpty cookieHeader then [||] else [| cookieHeader |]
        let balance = $"balance ({balanceName app.Balance})"
        let setCookie i =
            if app.Balance = BalanceAlgorithm.RandomTwoChoices then
                $"Set-Cookie: {Persistence.setCookieFor (app, i, secure)} (for the server drawn; {app.Servers[i].Name} shown)"
            else $"Set-Cookie: {Persistence.setCookieFor (app, i, secure)} (for {app.Servers[i].Name}, the first pick)"
        match (firstSelection (plan, headers, redispatch)).Selection, app.Persistence.Cookie with
        | Pinned i, Some name ->
            [ $"  persistence: cookie {name}={app.Servers[i].CookieValue} found → pinned to {app.Servers[i].Name} (no Set-Cookie)" ]
        | (Balanced(i, _, why) | Queued(i, why)), Some _ ->
            let fresh = setCookie i
            let next = if headers.Length = 0 then fresh else "new cookie: " + fresh
            [ $"  persistence: {cookieWhy why} → {balance} + {next}"
              "  response Cache-Control: gets private, as it carries the new cookie (nocache)" ]
        | (NoServer _ | PinnedDownRefused _), _ -> [ $"  persistence: {balance} finds no server that takes a new client → 503" ]
        | _, None -> [ $"  persistence: off (cookie = \"\") → {balance}, no cookie" ]
        | other, Some _ -> [ $"  persistence: {other}" ]

    let private healthLine (health: HealthCheckConfig) =
        if not health.Enabled then
            "  health: checks off, every server counts as up"
        else
            let host = health.Host |> Option.map (fun h -> $", Host {h}") |> Option.defaultValue ""
            let t = health.Thresholds
            $"  health: {health.Method} {health.Path}{host} expect {health.Expected} every {ConfigReading.formatDuration health.Interval}"
            + $" ±{health.Spread}%% (timeout {ConfigReading.formatDuration health.Timeout}, rise {t.Rise}, fall {t.Fall}),"
            + $" User-Agent: {health.UserAgent}"

    let private forwardLines (plan: ForwardPlan) (request: RequestFacts) (cookieHeader: string) (redispatch: bool) (defaults: DefaultsConfig) =
        let app = plan.App
        [ $"decision: forward to app '{app.Name}'"
          $"  normalised path: {plan.PublicPath}"
          let names =
              String.Join(
                  ", ",
                  app.Servers
                  |> Array.map (fun s ->
                      let limit = s.MaxConn |> Option.map (fun m -> $", maxconn {m}") |> Option.defaultValue ""
                      $"{s.Name} ({s.Address}, weight {s.Weight}{limit})")
              )
          $"  balance: {balanceName app.Balance} among {names}"
          yield! persistenceLines plan cookieHeader request.IsHttps redispatch
          healthLine app.Health
          RequestLimits.describe (defaults, app)
          let byRule = defaultArg plan.Rule "a rule"
          if plan.Pin.Length > 0 then
              let names = String.Join(", ", plan.Pin |> Array.map (fun i -> app.Servers[i].Name))
              $"  pinned by {byRule} to {names}: balance and persistence choose among these only"
          for edit in plan.RequestEdits do
              let text = RequestRules.describeEdit "request" edit
              $"  request header edit ({byRule}): {text}"
          for edit in plan.ResponseEdits do
              let text = RequestRules.describeEdit "response" edit
              $"  response header edit ({byRule}): {text}"
          $"  backend request line: {request.Method} {plan.BackendTarget} HTTP/1.1"
          $"  Host: {request.Host}"
          for name, value in plan.RequestHeaders do
              $"  {name}: {value}"
          if not (String.IsNullOrEmpty cookieHeader) then
              match Persistence.backendCookieHeaders (app, [| cookieHeader |]) with
              | [||] -> "  Cookie: (dropped: nothing left for the backend)"
              | kept ->
                  let joined = String.Join("; ", kept)
                  $"  Cookie: {joined}"
          $"  response Location/Content-Location: server or public-host URLs get {plan.Response.PublicScheme}://{plan.Response.PublicHost}{app.Prefix}/..."
          $"  response Set-Cookie Path=/x becomes Path={app.Prefix}/x" ]

    /// The decision lines for one request; `cookieHeader` is its `Cookie:` value ("" for none).
    let describe (snapshot: Snapshot) (request: RequestFacts) (cookieHeader: string) : string list =
        let scheme = if request.IsHttps then "https" else "http"
        let head = $"request: {request.Method} {scheme}://{request.Host}{request.RawTarget}"
        let cookie = if String.IsNullOrEmpty cookieHeader then [] else [ $"  request Cookie: {cookieHeader}" ]
        let request =
            if String.IsNullOrEmpty cookieHeader then request
            else { request with Headers = Array.append request.Headers [| "Cookie", cookieHeader |] }
        let rules =
            [ for rule, matched, why in Routing.ruleTrace snapshot request ->
                  if matched then $"  rule {rule.Name}: match ({why}) → {RequestRules.describeAction rule.Then}"
                  else $"  rule {rule.Name}: no match ({why})" ]
        let body =
            match Routing.decide snapshot request with
            | Redirect(status, location, why) -> [ $"decision: redirect {status} to {location}"; $"  because {why}" ]
            | Reject reason -> [ $"decision: reject {reason.Status}"; $"  because {reason.Text}" ]
            | Forward plan -> forwardLines plan request cookieHeader snapshot.Config.Defaults.Redispatch snapshot.Config.Defaults
        head :: cookie @ rules @ body

    /// `describe` for a URL; `cookieHeader` is the request's `Cookie:` value, "" for none.
    [<CompiledName("DescribeUrl")>]
    let describeUrl (snapshot: Snapshot, url: string, cookieHeader: string) : string array =
        let cookieHeader = HeaderRewrite.sanitize cookieHeader
        match parseUrl url with
        | Ok request -> describe snapshot request cookieHeader |> Array.ofList
        | Error e -> [| $"error: {e}" |]

    /// `describeUrl` with request header lines (`"X-Beta: 1"`) and a client address (`""`: the documentation
    /// address `exampleClient`), for rules that read headers or the source address. Lines without a colon are
    /// reported, not guessed at.
    [<CompiledName("DescribeRequest")>]
    let describeRequest (snapshot: Snapshot, url: string, cookieHeader: string, headers: string array, client: string) : string array =
        let cookieHeader = HeaderRewrite.sanitize cookieHeader
        let parsed =
            headers
            |> Array.map (fun line ->
                match line.IndexOf ':' with
                | i when i > 0 -> Ok(line.Substring(0, i).Trim(), HeaderRewrite.sanitize (line.Substring(i + 1).Trim()))
                | _ -> Error $"error: --header '{HeaderRewrite.sanitize line}' is not 'Name: value'")
        match parsed |> Array.tryPick (function Error e -> Some e | Ok _ -> None), parseUrl url with
        | Some e, _ -> [| e |]
        | None, Error e -> [| $"error: {e}" |]
        | None, Ok request ->
            let request =
                { request with
                    Headers = parsed |> Array.choose (function Ok h -> Some h | Error _ -> None)
                    ClientAddress = (if String.IsNullOrEmpty client then exampleClient else client) }
            describe snapshot request cookieHeader |> Array.ofList
