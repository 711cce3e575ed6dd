namespace Lb.Rules

open System

/// What the request's persistence cookie says, before any server state is read (HAProxy's TX_CK_* outcomes).
type CookieOutcome =
    /// The app's persistence is off (`cookie = ""`).
    | PersistenceOff
    /// No cookie of that name in the request (TX_CK_NONE).
    | NoCookie
    /// A value that names no server of this app: forged, stale or another app's (TX_CK_INVALID).
    | UnknownValue of value: string
    /// It names this server (TX_CK_VALID or TX_CK_DOWN once the state is read).
    | NamesServer of server: int

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

    /// The one lookup of "which server does this cookie name": the first value of the persistence cookie among
    /// these `Cookie:` header values (all of them, HTTP/2 may split the field, RFC 9113 §8.2.3) that names a
    /// server of this app. The cookie is found at any position among other cookies (`Cookies.valuesIn`). When
    /// several carry the name, the first naming a server of this app counts (RFC 6265 §5.4 step 2 sends the
    /// longest path first, so the app-scoped cookie wins over a stale wider one). A value naming no server of
    /// this app (forged, stale, another app's: opaque values include the app name) is UnknownValue. Whether
    /// the server named can keep the client is `Selection.first`'s question.
    [<CompiledName("CookieOutcome")>]
    let cookieOutcome (app: AppConfig, cookieHeaders: string[]) : CookieOutcome =
        match app.Persistence.Cookie with
        | None -> PersistenceOff
        | Some _ when cookieHeaders.Length = 0 -> NoCookie
        | Some name ->
            match Cookies.valuesIn (name, cookieHeaders) with
            | [||] -> NoCookie
            | values ->
                let servers = app.Servers
                let names (value: string) =
                    servers |> Array.tryFindIndex (fun s -> String.Equals(s.CookieValue, value, StringComparison.Ordinal))
                match values |> Array.tryPick (fun v -> if String.IsNullOrEmpty v then None else names v) with
                | Some i -> NamesServer i
                | None -> UnknownValue values[0]

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
