namespace Lb.Rules

open System

/// `lb explain -c FILE URL`: the decision for a URL as text, without sending anything anywhere.
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
                Ok { IsHttps = (scheme = "https"); Host = host; Method = "GET"; RawTarget = target; ClientAddress = exampleClient; ForwardedFor = None }

    let private forwardLines (plan: ForwardPlan) (request: RequestFacts) =
        [ $"decision: forward to app '{plan.App.Name}'"
          $"  normalised path: {plan.PublicPath}"
          let names = String.Join(", ", plan.App.Servers |> Array.map (fun s -> $"{s.Name} ({s.Address})"))
          $"  server: chosen among {names}"
          $"  backend request line: {request.Method} {plan.BackendTarget} HTTP/1.1"
          $"  Host: {request.Host}"
          for name, value in plan.RequestHeaders do
              $"  {name}: {value}"
          $"  response Location/Content-Location: server or public-host URLs get {plan.Response.PublicScheme}://{plan.Response.PublicHost}{plan.App.Prefix}/..."
          $"  response Set-Cookie Path=/x becomes Path={plan.App.Prefix}/x" ]

    /// The decision lines for one request.
    let describe (snapshot: Snapshot) (request: RequestFacts) : string list =
        let scheme = if request.IsHttps then "https" else "http"
        let head = $"request: {request.Method} {scheme}://{request.Host}{request.RawTarget}"
        let body =
            match Routing.decide snapshot request with
            | Redirect(status, location, why) -> [ $"decision: redirect {status} to {location}"; $"  because {why}" ]
            | Reject reason -> [ $"decision: reject {reason.Status}"; $"  because {reason.Text}" ]
            | Forward plan -> forwardLines plan request
        head :: body

    [<CompiledName("DescribeUrl")>]
    let describeUrl (snapshot: Snapshot) (url: string) : string array =
        match parseUrl url with
        | Ok request -> describe snapshot request |> Array.ofList
        | Error e -> [| $"error: {e}" |]
