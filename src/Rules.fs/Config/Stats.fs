namespace Lb.Rules

open System
open ConfigReading

/// `[stats]`: the stats listener.
[<RequireQualifiedAccess>]
module StatsSection =
    module K = Keywords.Stats

    /// `[stats] listen` when absent: loopback, so the page is not on the network unless asked for.
    let DefaultStatsListen = K.listen.Default

    /// `[stats] listen`: the stats listener's address (default 127.0.0.1:8000). Rejects an address that is not
    /// host:port, port 0, and the address of the http or https listener.
    let parseStatsListen errors (stats: Section) (listen: ListenConfig) : Endpoint =
        let at = tryGet stats K.listen.Name |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue stats.Table.At
        match endpoint errors stats K.listen.Name with
        | Some e when e.Port = 0 ->
            addError errors (keyword stats K.listen.Name) at "the stats listener needs a fixed port" "like \"127.0.0.1:8000\""
            e
        | Some e when Some e = listen.Http || Some e = listen.Https ->
            addError errors (keyword stats K.listen.Name) at $"{e} is already a proxy listener" "give the stats page its own port"
            e
        | Some e -> e
        | None -> DefaultStatsListen

    /// Text that goes inside an HTTP quoted-string or a header unchanged: printable ASCII, no `"` or `\`
    /// (RFC 9110 §5.6.4 would need escapes, which browsers show literally).
    let private isPlainHeaderText (s: string) =
        s <> "" && s.Length <= 100 && s |> Seq.forall (fun c -> c >= ' ' && c < '\127' && c <> '"' && c <> '\\')

    /// `[stats] realm`: the Basic realm the browser shows (default "lb stats"). Rejects empty text, quotes,
    /// backslashes, control and non-ASCII characters.
    let parseStatsRealm errors (stats: Section) : string =
        match optString errors stats K.realm.Name with
        | Some(r, _) when isPlainHeaderText r -> r
        | Some(r, at) ->
            addError errors (keyword stats K.realm.Name) at $"'{r}' cannot be a realm" "printable ASCII without quotes or backslashes, like \"lb stats\""
            K.realm.Default
        | None -> K.realm.Default

    /// `[stats] user`: the Basic user name (default "admin"). Rejects empty text, `:` (RFC 7617 §2: the user-id
    /// cannot contain a colon), quotes, backslashes, control and non-ASCII characters.
    let parseStatsUser errors (stats: Section) : string =
        match optString errors stats K.user.Name with
        | Some(u, _) when isPlainHeaderText u && not (u.Contains ':') -> u
        | Some(u, at) ->
            addError errors (keyword stats K.user.Name) at $"'{u}' cannot be a user name" "printable ASCII without ':', quotes or backslashes (RFC 7617 §2)"
            K.user.Default
        | None -> K.user.Default

    /// `[stats] password_hash` (what `lb hash-password` prints) or `password_file` (a file holding that line,
    /// relative to the config file), exactly one of them. Rejects both or neither, a file that cannot be read,
    /// text that is not a hash (`Password.parse`), and a hash of an empty or well-known password or of the
    /// user name (`Password.findWellKnown`): the seed's `stats auth admin:admin` must not come back.
    let parseStatsPassword errors (stats: Section) (baseDir: string) (io: ConfigIo) (user: string) : PasswordHash option =
        let fromText kw at (text: string) =
            match Password.parse text with
            | Error message ->
                addError errors kw at message "run `lb hash-password` and paste the line it prints"
                None
            | Ok hash ->
                match Password.findWellKnown (hash, user) with
                | Some "" ->
                    addError errors kw at "the password is empty" "choose a password and run `lb hash-password`"
                    None
                | Some known ->
                    let what = if known = user then "the user name" else $"the well-known password '{known}'"
                    addError errors kw at $"the password is {what}" "choose another password and run `lb hash-password`"
                    None
                | None -> Some hash
        match optString errors stats K.passwordHash.Name, optString errors stats K.passwordFile.Name with
        | Some _, Some(_, at) ->
            addError errors (keyword stats K.passwordFile.Name) at "password_hash and password_file are both set" "keep one of them"
            None
        | Some(text, at), None -> fromText (keyword stats K.passwordHash.Name) at text
        | None, Some(path, at) ->
            let full = resolve baseDir path
            match io.ReadText full with
            | Ok text -> fromText (keyword stats K.passwordFile.Name) at text
            | Error message ->
                addError errors (keyword stats K.passwordFile.Name) at $"cannot read {full}: {message}" "paths are relative to the config file"
                None
        | None, None ->
            addError errors (keyword stats K.passwordHash.Name) stats.Table.At "missing" "run `lb hash-password` and add password_hash = \"...\" under [stats]"
            None

    /// `[stats] refresh`: how often the page reloads itself (default 10s, 1s to 1h).
    let parseStatsRefresh errors (stats: Section) : TimeSpan =
        let refresh = duration errors stats K.refresh.Name K.refresh.Default
        if refresh < TimeSpan.FromSeconds 1.0 || refresh > TimeSpan.FromHours 1.0 then
            let at = tryGet stats K.refresh.Name |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue stats.Table.At
            addError errors (keyword stats K.refresh.Name) at $"{formatDuration refresh} is out of range" "use a value from 1s to 1h"
        refresh

    /// `[stats] pinned_window`: a client counts as pinned to a server for this long after its last request
    /// with that server's cookie (default 5m, 1s to 24h).
    let parseStatsPinnedWindow errors (stats: Section) : TimeSpan =
        let window = duration errors stats K.pinnedWindow.Name K.pinnedWindow.Default
        if window < TimeSpan.FromSeconds 1.0 || window > TimeSpan.FromHours 24.0 then
            let at = tryGet stats K.pinnedWindow.Name |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue stats.Table.At
            addError errors (keyword stats K.pinnedWindow.Name) at $"{formatDuration window} is out of range" "use a value from 1s to 24h"
        window

    /// `[stats]`: the stats page, JSON, CSV, Prometheus metrics and admin actions on their own listener. Absent:
    /// no stats listener.
    let parse (root: Section) (baseDir: string) (io: ConfigIo) (listen: ListenConfig) : StatsConfig option * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root Keywords.Stats.Table with
        | Some stats ->
            rejectUnknownKeys errors stats K.names
            let endpoint = parseStatsListen errors stats listen
            let realm = parseStatsRealm errors stats
            let user = parseStatsUser errors stats
            let password = parseStatsPassword errors stats baseDir io user
            let refresh = parseStatsRefresh errors stats
            let window = parseStatsPinnedWindow errors stats
            password
            |> Option.map (fun hash ->
                { Listen = endpoint
                  Realm = realm
                  User = user
                  PasswordHash = hash
                  Refresh = refresh
                  PinnedWindow = window })
        | None -> None
