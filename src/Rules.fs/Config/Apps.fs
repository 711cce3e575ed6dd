namespace Lb.Rules

open System
open ConfigReading

/// `[apps.NAME]`: the applications, their servers and balance.
[<RequireQualifiedAccess>]
module AppsSection =
    /// An app name is one URL path segment of unreserved characters (RFC 3986 §2.3), so `/name/` routes to it
    /// without any decoding ambiguity.
    let isValidAppName (name: string) =
        name.Length > 0
        && name.Length <= 64
        && name <> "."
        && name <> ".."
        && name |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' || c = '.' || c = '~')

    /// Server names appear in logs, stats and (by default) the persistence cookie: keep them cookie-safe.
    let isValidServerName (name: string) =
        name.Length > 0 && name.Length <= 64 && name |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' || c = '.')

    /// Server `cookie`: the persistence value naming the server in Named mode (HAProxy `server ... cookie V`).
    /// Rejects a value that is not RFC 6265 §4.1.1 cookie-octets, and any value in Opaque mode, where it would
    /// be silently ignored. None: the server name (Named) or the opaque digest.
    let parseServerCookie errors (section: Section) (mode: CookieValueMode) : string option =
        match optString errors section Keywords.Server.cookie.Name, mode with
        | Some(value, at), CookieValueMode.Opaque ->
            addError
                errors
                (keyword section Keywords.Server.cookie.Name)
                at
                $"cookie value '{value}' has no effect with persistence mode \"opaque\""
                "remove it, or set mode = \"named\" in the app's persistence"
            None
        | Some(value, at), CookieValueMode.Named when not (Cookies.isValidValue value) ->
            addError
                errors
                (keyword section Keywords.Server.cookie.Name)
                at
                $"'{value}' is not a cookie value"
                "visible ASCII without spaces, quotes, commas, semicolons or backslashes (RFC 6265 §4.1.1)"
            None
        | Some(value, _), CookieValueMode.Named -> Some value
        | None, _ -> None

    /// Server `maxconn`: HAProxy server `maxconn`, requests in flight to this server (1..1000000); absent means
    /// only the global limit applies.
    let parseServerMaxConn errors (section: Section) : int option =
        match optInt errors section Keywords.Server.maxConn.Name with
        | Some(n, _) when n >= 1L && n <= int64 DefaultsSection.MaxConnLimit -> Some(int n)
        | Some(n, at) ->
            addError errors (keyword section Keywords.Server.maxConn.Name) at $"{n} is out of range" $"use a value from 1 to {DefaultsSection.MaxConnLimit}"
            None
        | None -> None

    /// One entry of `servers = [ { name, address, weight, cookie, maxconn } ]`
    /// (HAProxy `server NAME ADDR weight W cookie V maxconn M`). The cookie value is resolved here with the
    /// app's persistence mode (`Cookies.cookieValueFor`).
    let parseServer errors (appName: string) (mode: CookieValueMode) (section: Section) : ServerConfig option =
        rejectUnknownKeys errors section Keywords.Server.names
        let name =
            match optString errors section Keywords.Server.name.Name with
            | Some(n, at) when not (isValidServerName n) ->
                addError errors (keyword section Keywords.Server.name.Name) at $"'{n}' is not a valid server name" "use letters, digits, '-', '_' or '.'"
                None
            | Some(n, _) -> Some n
            | None ->
                addError errors (keyword section Keywords.Server.name.Name) section.Table.At "missing" "every server needs a name"
                None
        let address =
            match endpoint errors section Keywords.Server.address.Name with
            | Some e when e.Port = 0 || e.Host = "*" ->
                addError errors (keyword section Keywords.Server.address.Name) section.Table.At "a server needs a real host and port" "like \"10.0.0.11:8080\""
                None
            | Some e -> Some e
            | None ->
                if (tryGet section Keywords.Server.address.Name).IsNone then
                    addError errors (keyword section Keywords.Server.address.Name) section.Table.At "missing" "like address = \"10.0.0.11:8080\""
                None
        let weight = intInRange errors section Keywords.Server.weight.Name 0 256 Keywords.Server.weight.Default
        let cookie = parseServerCookie errors section mode
        let maxConn = parseServerMaxConn errors section
        match name, address with
        | Some n, Some a ->
            Some
                { Name = n
                  Address = a
                  Weight = weight
                  CookieValue = Cookies.cookieValueFor (mode, appName, n, string a, cookie)
                  MaxConn = maxConn }
        | _ -> None

    let private serverSections errors (app: Section) =
        match tryGet app Keywords.App.servers.Name with
        | Some(_, _, TArray(items, _)) ->
            items
            |> List.mapi (fun i item ->
                match item with
                | TTable t -> Some { Path = $"{app.Path}.servers[{i}]"; Table = t }
                | node ->
                    addError errors $"{app.Path}.servers[{i}]" (TomlNode.position node) $"expected a table, found {TomlNode.kindName node}" "write { name = \"s1\", address = \"10.0.0.11:8080\" }"
                    None)
            |> List.choose id
        | Some(_, at, _) ->
            addError errors (keyword app Keywords.App.servers.Name) at "expected an array of servers" "servers = [ { name = \"s1\", address = \"10.0.0.11:8080\" } ]"
            []
        | None ->
            addError errors (keyword app Keywords.App.servers.Name) app.Table.At "missing" "every app needs at least one server"
            []

    let private rejectDuplicateServerNames errors (app: Section) (servers: ServerConfig list) =
        servers
        |> List.countBy (fun s -> s.Name)
        |> List.filter (fun (_, n) -> n > 1)
        |> List.iter (fun (name, _) ->
            addError errors (keyword app Keywords.App.servers.Name) app.Table.At $"server name '{name}' is used twice" "server names must be unique within an app")

    /// Cookie values must identify one server each within an app (`Cookies.validateServerValues`); values that
    /// are not cookie-octets were already reported at their server, so only duplicates remain here.
    let private rejectDuplicateCookieValues errors (app: Section) (servers: ServerConfig list) =
        let at =
            match tryGet app Keywords.App.servers.Name with
            | Some(_, at, _) -> at
            | None -> app.Table.At
        for problem in Cookies.validateServerValues (servers |> List.map (fun s -> s.CookieValue) |> Array.ofList) do
            addError errors (keyword app Keywords.App.servers.Name) at problem "give each server its own cookie value (or none: its name is used)"

    /// `[apps.NAME] balance`: `"roundrobin"` (default), `"leastconn"` or `"random"` (two choices).
    let parseBalance errors (app: Section) : BalanceAlgorithm =
        let k = Keywords.App.balance
        match Keyword.optWord errors app k with
        | None -> k.Default
        | Some(Ok balance) -> balance
        | Some(Error(other, at)) ->
            addError errors (keyword app k.Name) at $"'{other}' is not a balance algorithm" (suggestion (Keyword.wordList k) other)
            k.Default

    /// `[apps.NAME] cache`: true sends the app's GET/HEAD responses through the shared cache (`[cache]`);
    /// default false, as Apache's mod_cache caches nothing without `CacheEnable`.
    /// `[apps.NAME] max_request_body`: this app's body limit, over `[defaults] max_request_body` (None: that one).
    let parseAppMaxRequestBody errors (app: Section) : int64 option =
        match tryGet app Keywords.App.maxRequestBody.Name with
        | Some _ -> Some(DefaultsSection.requestBodySize errors app Keywords.Defaults.maxRequestBody.Default)
        | None -> None

    let parseAppCache errors (app: Section) : bool =
        optBool errors app Keywords.App.cache.Name |> Option.defaultValue Keywords.App.cache.Default

    /// `[apps.NAME]`: one application reached as `/NAME/`, with its servers (HAProxy `backend NAME`). Its
    /// `persistence` and `health` tables override the global ones key by key.
    let parseApp
        errors
        (app: Section)
        (name: string)
        (at: Position)
        (persistence: PersistenceConfig)
        (health: HealthCheckConfig * TimeSpan option)
        : AppConfig option =
        rejectUnknownKeys errors app Keywords.App.names
        if not (isValidAppName name) then
            addError errors app.Path at $"'{name}' cannot be an app name" "an app name is one path segment: letters, digits, '-', '_', '.', '~'"
        let balance = parseBalance errors app
        let persistence =
            match optTable errors app Keywords.App.persistence.Name with
            | Some table -> PersistenceSection.parsePersistence errors table persistence
            | None -> persistence
        let health =
            match optTable errors app Keywords.App.health.Name with
            | Some table -> fst (HealthSection.parseHealth errors table health)
            | None -> fst health
        let servers = serverSections errors app |> List.choose (parseServer errors name persistence.Mode)
        if servers.IsEmpty && (tryGet app Keywords.App.servers.Name).IsSome then
            addError errors (keyword app Keywords.App.servers.Name) app.Table.At "no valid server" "every app needs at least one server"
        rejectDuplicateServerNames errors app servers
        rejectDuplicateCookieValues errors app servers
        if servers.IsEmpty then
            None
        else
            Some
                { Name = name
                  Servers = Array.ofList servers
                  Balance = balance
                  Persistence = persistence
                  Health = health
                  Cache = parseAppCache errors app
                  MaxRequestBody = parseAppMaxRequestBody errors app
                  Rules = RulesSection.parseRules errors app (RulesSection.AppRules(name, servers |> List.map (fun s -> s.Name))) }

    let parse (root: Section) (persistence: PersistenceConfig) (health: HealthCheckConfig * TimeSpan option) : AppConfig array * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root "apps" with
        | Some apps ->
            [| for name, at, node in apps.Table.Entries do
                   match node with
                   | TTable t ->
                       match parseApp errors { Path = $"apps.{name}"; Table = t } name at persistence health with
                       | Some app -> yield app
                       | None -> ()
                   | other -> addError errors $"apps.{name}" at $"expected a table, found {TomlNode.kindName other}" $"write [apps.{name}]" |]
        | None ->
            addError errors "apps" root.Table.At "no app is configured" "add [apps.app1] with servers = [...]"
            [||]
