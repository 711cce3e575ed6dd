namespace Lb.Rules

open ConfigReading

/// `[listen]`: the http and https listeners.
[<RequireQualifiedAccess>]
module ListenSection =
    module K = Keywords.Listen

    /// `[listen] plain_http`: "redirect" (Apache's port-80 vhost) or "proxy" (TLS ends before lb).
    let parsePlainHttpMode errors (listen: Section) =
        match Keyword.optWord errors listen K.plainHttp with
        | None -> K.plainHttp.Default
        | Some(Ok mode) -> mode
        | Some(Error(other, at)) ->
            addError errors (keyword listen K.plainHttp.Name) at $"'{other}' is not a mode" (Keyword.wordHint K.plainHttp)
            K.plainHttp.Default

    /// `[listen] redirect_status`: 301, 302 (default, as Apache's `[R]`), 303, 307 or 308.
    let parseRedirectStatus errors (listen: Section) =
        match optInt errors listen K.redirectStatus.Name with
        | Some(s, _) when List.contains s [ 301L; 302L; 303L; 307L; 308L ] -> int s
        | Some(s, at) ->
            addError errors (keyword listen K.redirectStatus.Name) at $"{s} is not a redirect status" "use 301, 302, 303, 307 or 308"
            K.redirectStatus.Default
        | None -> K.redirectStatus.Default

    /// `[listen] http`, `https`: the two listeners.
    /// Rejects a config with neither listener, unless one was written and refused (its error says why).
    let parse (root: Section) : ListenConfig * ConfigError list =
        ownErrors <| fun errors ->
        let empty = absent Keywords.Listen.Table root.Table.At
        let listen = optTable errors root Keywords.Listen.Table |> Option.defaultValue empty
        rejectUnknownKeys errors listen K.names
        let config =
            { Http = endpoint errors listen K.http.Name
              Https = endpoint errors listen K.https.Name
              PlainHttp = parsePlainHttpMode errors listen
              RedirectStatus = parseRedirectStatus errors listen }
        if config.Http.IsNone && config.Https.IsNone && errors.Count = 0 then
            // `errors` holds this section's mistakes only: a refused `http = ...` needs no second error.
            addError errors listen.Path listen.Table.At "no listener is configured" "add https = \"127.0.0.1:8443\" under [listen]"
        match config.Http, config.Https with
        | Some h, Some s when h = s ->
            addError errors (keyword listen K.https.Name) listen.Table.At "http and https listen on the same address" "give them different ports"
        | _ -> ()
        config
