namespace Lb.Rules

open System
open ConfigReading

/// `[persistence]` and an app's `persistence = { ... }`: the persistence cookie.
[<RequireQualifiedAccess>]
module PersistenceSection =
    module K = Keywords.Persistence

    let defaultPersistence =
        { Cookie = K.cookie.Default
          Mode = K.mode.Default
          MoveFirst = K.moveFirst.Default }

    /// `persistence.cookie`: the cookie name (RFC 6265 §4.1.1 token), default `SRVID`; `""` turns persistence
    /// off. Rejects a non-token name and a `__Host-` name: RFC 6265bis §4.1.3.2 requires Path=/ for it, and lb
    /// scopes the cookie to the app's path so apps never collide.
    let parsePersistenceCookie errors (section: Section) (fallback: string option) : string option =
        match optString errors section K.cookie.Name with
        | Some("", _) -> None
        | Some(name, at) when not (Cookies.isValidName name) ->
            addError
                errors
                (keyword section K.cookie.Name)
                at
                $"'{name}' is not a cookie name"
                "use letters, digits and !#$%&'*+-.^_`|~ (RFC 6265 token), like \"SRVID\"; \"\" turns persistence off"
            fallback
        | Some(name, at) when name.StartsWith("__Host-", StringComparison.OrdinalIgnoreCase) ->
            addError
                errors
                (keyword section K.cookie.Name)
                at
                "a __Host- cookie must have Path=/, but lb scopes the cookie to the app's path"
                "use another name, like \"SRVID\" or \"__Secure-SRVID\""
            fallback
        | Some(name, _) -> Some name
        | None -> fallback

    /// `persistence.mode`: `"named"` (the server's `cookie` value, else its name) or `"opaque"` (a digest that
    /// shows no name and is identical on every node with the same config).
    let parsePersistenceMode errors (section: Section) (fallback: CookieValueMode) : CookieValueMode =
        match Keyword.optWord errors section K.mode with
        | Some(Ok mode) -> mode
        | Some(Error(other, at)) ->
            addError errors (keyword section K.mode.Name) at $"'{other}' is not a persistence mode" (Keyword.wordHint K.mode)
            fallback
        | None -> fallback

    /// `persistence.move_first`: pass the persistence cookie on to the backend, moved first in `Cookie:` (the
    /// seed's Apache workaround for a legacy HAProxy < 1.3.23 behind lb). Default false: the backend never sees it.
    let parseMoveFirst errors (section: Section) (fallback: bool) : bool =
        optBool errors section K.moveFirst.Name |> Option.defaultValue fallback

    /// `[persistence]` or an app's `persistence = { ... }`: each key absent here keeps the fallback's value.
    let parsePersistence errors (section: Section) (fallback: PersistenceConfig) : PersistenceConfig =
        rejectUnknownKeys errors section K.names
        { Cookie = parsePersistenceCookie errors section fallback.Cookie
          Mode = parsePersistenceMode errors section fallback.Mode
          MoveFirst = parseMoveFirst errors section fallback.MoveFirst }

    /// The global `[persistence]`: every app inherits it (the defaults when the section is absent).
    let parseGlobal (root: Section) : PersistenceConfig * ConfigError list =
        ownErrors <| fun errors ->
        parsePersistence errors (optTable errors root Keywords.Persistence.Table |> Option.defaultValue (absent Keywords.Persistence.Table root.Table.At)) defaultPersistence
