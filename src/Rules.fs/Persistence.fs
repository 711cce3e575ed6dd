namespace Lb.Rules

open System

/// Whether a request is pinned by its persistence cookie, decided before balancing.
type PersistenceChoice =
    /// A valid cookie for a usable server: send the request there and set no cookie (HAProxy `indirect`).
    | Pinned of serverIndex: int
    /// Persistence is off, or there is no cookie, or its value is unknown (forged, stale, another app's), or
    /// the pinned server is not usable: balance, then set a new cookie when persistence is on.
    | Choose of why: string

/// HAProxy's `cookie NAME insert indirect nocache` for one app: which server a cookie pins, what the backend
/// receives in `Cookie:`, the `Set-Cookie` line, and the `Cache-Control` of a response that carries it.
/// Everything is computed from the config alone, so two lb nodes with the same config produce and honour
/// the same cookies (`Cookies.opaqueValue` holds no per-node secret).
[<RequireQualifiedAccess>]
module Persistence =

    /// Whether the app uses a persistence cookie (config `cookie = ""` turns it off). When off, the shell
    /// sets no cookie and passes `Cookie:` through unchanged.
    [<CompiledName("IsOn")>]
    let isOn (app: AppConfig) : bool = app.Persistence.Cookie.IsSome

    /// Values quoted in reasons are cut short: they come from the client and end up in logs.
    let private quote (value: string) =
        let shown = if value.Length > 40 then value.Substring(0, 40) + "…" else value
        "'" + shown + "'"

    let private tryServerOf (app: AppConfig) (value: string) =
        if String.IsNullOrEmpty value then None
        else app.Servers |> Array.tryFindIndex (fun s -> String.Equals(s.CookieValue, value, StringComparison.Ordinal))

    /// The persistence decision for a request with these `Cookie:` header values (all of them, HTTP/2 may
    /// split the field, RFC 9113 §8.2.3) given which servers are usable now (`usable`, index-aligned with
    /// `app.Servers`, a missing entry counts as not usable: up and not in maintenance. A server drained with
    /// weight 0 stays usable here: it takes no new clients but keeps serving its pinned ones, as in HAProxy).
    /// The cookie is found at any position among any other cookies (`Cookies.valuesIn`). When several carry
    /// the name, the first that names a server of this app counts (RFC 6265 §5.4 step 2 sends the longest
    /// path first, so the app-scoped cookie wins over a stale wider one). A value that names no server of
    /// this app — forged, stale, or another app's (opaque values include the app name) — is treated as absent.
    /// A pinned server that is not usable is redispatched: `Choose`, and the shell sets a new cookie.
    [<CompiledName("Decide")>]
    let decide (app: AppConfig, cookieHeaders: string[], usable: bool[]) : PersistenceChoice =
        match app.Persistence.Cookie with
        | None -> Choose "persistence is off"
        | Some name ->
            match Cookies.valuesIn (name, cookieHeaders) with
            | [||] -> Choose "no cookie"
            | values ->
                match values |> Array.tryPick (tryServerOf app) with
                | Some i when i < usable.Length && usable[i] -> Pinned i
                | Some i -> Choose $"ignored: server {app.Servers[i].Name} is not usable"
                | None -> Choose $"ignored: unknown value {quote values[0]} (forged or other app)"

    /// The `Cookie:` header values the backend receives. Normally the persistence cookie is removed (HAProxy
    /// `indirect`: the application never sees it) and other pairs keep their text and order; an empty array
    /// means the shell drops the `Cookie:` header. With `move_first` (the seed's workaround for a legacy
    /// HAProxy < 1.3.23 behind lb) the persistence cookie is kept instead, moved to the front of one combined
    /// header (`Cookies.moveFirst`), as the seed's Apache `RequestHeader edit` did. Persistence off: unchanged.
    [<CompiledName("BackendCookieHeaders")>]
    let backendCookieHeaders (app: AppConfig, cookieHeaders: string[]) : string[] =
        match app.Persistence.Cookie with
        | None -> cookieHeaders
        | Some name when app.Persistence.MoveFirst ->
            match Cookies.combine cookieHeaders with
            | Some combined -> [| Cookies.moveFirst (name, combined) |]
            | None -> [||]
        | Some name -> Cookies.removeFromHeaders (name, cookieHeaders)

    /// The `Set-Cookie` value pinning a client to `app.Servers[serverIndex]` (HAProxy `insert`): the server's
    /// cookie value, `Path=<prefix>/` so apps never see each other's cookie, HttpOnly, SameSite=Lax, and
    /// Secure when the client came over https (`secure`) or the name has the `__Secure-` prefix (user agents
    /// reject such a cookie without it, RFC 6265bis §4.1.3.1). Identical on every node with the same config.
    /// Rejects (ArgumentException) an app whose persistence is off, a server index out of range, and an app
    /// not validated by `Config` (invalid name or value); none happens for a config that loaded.
    [<CompiledName("SetCookieFor")>]
    let setCookieFor (app: AppConfig, serverIndex: int, secure: bool) : string =
        match app.Persistence.Cookie with
        | None -> invalidArg (nameof app) $"persistence is off for app '{app.Name}': set no cookie"
        | Some _ when serverIndex < 0 || serverIndex >= app.Servers.Length ->
            invalidArg (nameof serverIndex) $"app '{app.Name}' has no server {serverIndex}"
        | Some name ->
            let secure = secure || name.StartsWith("__Secure-", StringComparison.OrdinalIgnoreCase)
            match Cookies.setCookie (name, app.Servers[serverIndex].CookieValue, app.Prefix + "/", secure) with
            | Ok line -> line
            | Error problems -> invalidArg (nameof app) (String.Join("; ", problems))

    /// The `Cache-Control` of a response that carries an inserted persistence cookie (HAProxy `nocache`),
    /// merged with the backend's values: `private` exactly once, `public` dropped (`Cookies.withPrivate`).
    [<CompiledName("CacheControlWithPrivate")>]
    let cacheControlWithPrivate (backendValues: string[]) : string =
        Cookies.withPrivate backendValues
