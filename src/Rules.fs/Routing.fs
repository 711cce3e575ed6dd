namespace Lb.Rules

open System
open System.Collections.Generic

/// What the shell knows about a request before forwarding a byte of it.
type RequestFacts =
    { IsHttps: bool
      /// The Host header (or HTTP/2 `:authority`), as received.
      Host: string
      Method: string
      /// The request target as received on the wire: `/app1/x?y=1` (Kestrel's RawTarget).
      RawTarget: string
      ClientAddress: string
      /// The client's own X-Forwarded-For, if any.
      ForwardedFor: string option }

/// A request the shell forwards: to which app, with which path, and the headers to set.
type ForwardPlan =
    { App: AppConfig
      AppIndex: int
      /// Path and query the backend sees: `/rest?q`.
      BackendTarget: string
      /// Normalised public path: `/app1/rest`.
      PublicPath: string
      RequestHeaders: (string * string) array
      Response: ResponseContext }

type RejectReason =
    | BadRequest of string
    | NotFound of string

    member this.Status =
        match this with
        | BadRequest _ -> 400
        | NotFound _ -> 404

    member this.Text =
        match this with
        | BadRequest s
        | NotFound s -> s

/// The decision for one request: the shell carries it out and decides nothing itself.
type Decision =
    | Redirect of status: int * location: string * why: string
    | Forward of ForwardPlan
    | Reject of RejectReason

/// The compiled, immutable form of a config that requests are decided against (STYLE rule 11).
type Snapshot(config: LbConfig) =
    let appIndex =
        let d = Dictionary<string, int>(StringComparer.Ordinal)
        config.Apps |> Array.iteri (fun i a -> d[a.Name] <- i)
        d
    let authorities =
        config.Apps |> Array.map (fun a -> a.Servers |> Array.map (fun s -> (string s.Address).ToLowerInvariant()))

    member _.Config = config
    member _.TryFindApp(name: string) =
        match appIndex.TryGetValue name with
        | true, i -> Some i
        | _ -> None
    member _.ServerAuthorities(appIndex: int) = authorities[appIndex]

[<RequireQualifiedAccess>]
module Routing =
    /// Splits a request target into path and query (`?` included in the query).
    let splitTarget (target: string) =
        match target.IndexOf '?' with
        | -1 -> target, ""
        | i -> target.Substring(0, i), target.Substring i

    /// RFC 9112 §3.2.2: a server MUST accept the absolute-form (`GET http://site/app1/x HTTP/1.1`); it is
    /// routed by its path and query, exactly like the origin-form `/app1/x`. Other forms are left to be refused.
    let originForm (target: string) =
        let schemeEnd = target.IndexOf "://"
        let scheme = if schemeEnd > 0 then target.Substring(0, schemeEnd).ToLowerInvariant() else ""
        if scheme = "http" || scheme = "https" then
            let rest = target.Substring(schemeEnd + 3)
            match rest.IndexOfAny [| '/'; '?' |] with
            | -1 -> "/"
            | i when rest[i] = '?' -> "/" + rest.Substring i
            | i -> rest.Substring i
        else
            target

    /// A Host header is `host[:port]` with a reg-name or IP literal (RFC 9110 §7.2); anything else is refused
    /// before it can end up in a Location header.
    let isValidHost (host: string) =
        not (String.IsNullOrEmpty host)
        && host.Length <= 255
        && host |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || "-._~:[]!$&'()*+,;=%".IndexOf c >= 0)

    let private hostWithoutPort (host: string) =
        if host.StartsWith "[" then
            match host.IndexOf ']' with
            | -1 -> host
            | i -> host.Substring(0, i + 1)
        else
            match host.LastIndexOf ':' with
            | -1 -> host
            | i -> host.Substring(0, i)

    /// Apache's port-80 vhost: `https://HOST[:port]/same/path?same=query`, path and query exactly as received.
    let httpsRedirect (config: LbConfig) (request: RequestFacts) =
        let port =
            match config.Listen.Https with
            | Some e when e.Port <> 443 -> $":{e.Port}"
            | _ -> ""
        Redirect(config.Listen.RedirectStatus, "https://" + hostWithoutPort request.Host + port + request.RawTarget, "plain HTTP is redirected to https")

    let private forwardPlan (snapshot: Snapshot) (request: RequestFacts) index (publicPath: string) (rest: string) query =
        let app = snapshot.Config.Apps[index]
        { App = app
          AppIndex = index
          BackendTarget = rest + query
          PublicPath = publicPath
          RequestHeaders = HeaderRewrite.forwardedHeaders request.ForwardedFor request.ClientAddress request.IsHttps request.Host app.Prefix
          Response =
            { Prefix = app.Prefix
              PublicScheme = (if request.IsHttps then "https" else "http")
              PublicHost = request.Host
              ServerAuthorities = snapshot.ServerAuthorities index } }

    /// Routes on the first segment of the normalised path: `/app1/rest` → app1 with `/rest`; `/app1` → redirect
    /// to `/app1/`; anything else → 404. `/app10/` and `/app1x` are not app1: whole segments only.
    let routeByPath (snapshot: Snapshot) (request: RequestFacts) (path: string) (query: string) =
        let segment, rest = Paths.firstSegment path
        match snapshot.TryFindApp segment, rest with
        | Some _, None ->
            Redirect(snapshot.Config.Listen.RedirectStatus, path + "/" + query, "an app is reached with a trailing slash")
        | Some index, Some rest -> Forward(forwardPlan snapshot request index path rest query)
        | None, _ -> Reject(NotFound $"no app serves '/{segment}'")

    /// The whole decision for one request, made before any byte is forwarded.
    [<CompiledName("Decide")>]
    let decide (snapshot: Snapshot) (request: RequestFacts) : Decision =
        let request = if request.RawTarget.StartsWith '/' then request else { request with RawTarget = originForm request.RawTarget }
        let rawPath, query = splitTarget request.RawTarget
        if not (isValidHost request.Host) then
            Reject(BadRequest "missing or invalid Host header")
        elif not (Paths.isSafeQuery query) then
            Reject(BadRequest "control character in query")
        else
            match Paths.normalize rawPath with
            | Error reason -> Reject(BadRequest reason)
            | Ok _ when not request.IsHttps && snapshot.Config.Listen.PlainHttp = PlainHttpMode.RedirectToHttps ->
                httpsRedirect snapshot.Config request
            | Ok path -> routeByPath snapshot request path query
