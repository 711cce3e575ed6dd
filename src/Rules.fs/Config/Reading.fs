namespace Lb.Rules

open System
open System.Globalization
open System.Net

/// Reading typed values out of a `TomlTable`, collecting every error instead of stopping at the first.
/// Each reader records an error and returns a fallback, so validation can go on and report everything.
module ConfigReading =
    type Errors = ResizeArray<ConfigError>

    /// A table with the dotted path it was found at, so errors can name `apps.app1.servers[2].address`.
    type Section = { Path: string; Table: TomlTable }

    let keyword (section: Section) key =
        if section.Path = "" then key else section.Path + "." + key

    let addError (errors: Errors) kw (at: Position) message hint =
        errors.Add
            { Keyword = kw
              Line = at.Line
              Column = at.Column
              Message = message
              Hint = hint }

    let tryGet (section: Section) key =
        section.Table.Entries |> List.tryFind (fun (name, _, _) -> name = key)

    /// Levenshtein distance, for "did you mean" hints on misspelt keywords.
    let private distance (a: string) (b: string) =
        let d = Array2D.init (a.Length + 1) (b.Length + 1) (fun i j -> if i = 0 then j elif j = 0 then i else 0)
        for i in 1 .. a.Length do
            for j in 1 .. b.Length do
                let cost = if a[i - 1] = b[j - 1] then 0 else 1
                d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
        d[a.Length, b.Length]

    let suggestion (known: string list) (unknown: string) =
        known
        |> List.map (fun k -> k, distance k unknown)
        |> List.filter (fun (_, d) -> d <= 3)
        |> List.sortBy snd
        |> List.tryHead
        |> Option.map (fun (k, _) -> $"did you mean '{k}'?")
        |> Option.defaultValue ("known keys here: " + String.Join(", ", known))

    /// Every key of a section must be one lb knows: a typo must not silently fall back to a default.
    let rejectUnknownKeys errors (section: Section) (known: string list) =
        for name, at, _ in section.Table.Entries do
            if not (List.contains name known) then
                addError errors (keyword section name) at "unknown key" (suggestion known name)

    let private wrongType errors kw node expected =
        let hint =
            match expected with
            | "a string" -> "put the value in double quotes"
            | "an integer" -> "write a whole number without quotes"
            | "true or false" -> "write true or false without quotes"
            | _ -> "write it as a [section] or an inline { key = value } table"
        addError errors kw (TomlNode.position node) $"expected {expected}, found {TomlNode.kindName node}" hint

    let optString errors section key : (string * Position) option =
        match tryGet section key with
        | Some(_, _, TString(s, at)) -> Some(s, at)
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "a string"
            None
        | None -> None

    let optInt errors section key : (int64 * Position) option =
        match tryGet section key with
        | Some(_, _, TInteger(i, at)) -> Some(i, at)
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "an integer"
            None
        | None -> None

    let optBool errors section key : bool option =
        match tryGet section key with
        | Some(_, _, TBoolean(b, _)) -> Some b
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "true or false"
            None
        | None -> None

    let optTable errors section key : Section option =
        match tryGet section key with
        | Some(_, _, TTable t) -> Some { Path = keyword section key; Table = t }
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "a table"
            None
        | None -> None

    /// An integer within bounds, or the default when absent.
    let intInRange errors section key (low: int) (high: int) (fallback: int) =
        match optInt errors section key with
        | Some(i, _) when i >= int64 low && i <= int64 high -> int i
        | Some(i, at) ->
            addError errors (keyword section key) at $"{i} is out of range" $"use a value from {low} to {high}"
            fallback
        | None -> fallback

    let private durationUnits =
        [ "ms", 1.0; "s", 1000.0; "m", 60_000.0; "h", 3_600_000.0 ]

    /// `"250ms"`, `"5s"`, `"1.5m"`, `"2h"`. A bare number is refused: HAProxy reads it as milliseconds,
    /// keepalived as seconds, and that ambiguity is a classic outage.
    let parseDuration (text: string) : TimeSpan option =
        let text = text.Trim()
        durationUnits
        |> List.sortByDescending (fun (u, _) -> u.Length)
        |> List.tryPick (fun (unitName, ms) ->
            if text.EndsWith unitName && text.Length > unitName.Length then
                let number = text.Substring(0, text.Length - unitName.Length)
                match Double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture) with
                | true, v when Char.IsDigit number[number.Length - 1] -> Some(TimeSpan.FromMilliseconds(v * ms))
                | _ -> None
            else
                None)

    /// A duration as config writes it: `"10s"`, `"250ms"`, `"1.5s"` (round trips through `parseDuration`).
    let formatDuration (d: TimeSpan) =
        let ms = d.TotalMilliseconds
        if ms >= 1000.0 && ms % 1000.0 = 0.0 then (ms / 1000.0).ToString("R", CultureInfo.InvariantCulture) + "s"
        else ms.ToString("R", CultureInfo.InvariantCulture) + "ms"

    let private sizeUnits =
        [ "B", 1L; "KB", 1L <<< 10; "KiB", 1L <<< 10; "MB", 1L <<< 20; "MiB", 1L <<< 20; "GB", 1L <<< 30; "GiB", 1L <<< 30
          "TB", 1L <<< 40; "TiB", 1L <<< 40 ]

    /// `"256MB"`, `"512KB"`, `"1GiB"`, `"4096B"`: a whole number and a unit; K, M, G and T are powers of 1024 (as
    /// in nginx), with or without the `i`. A bare number is refused, like a bare duration.
    let parseSize (text: string) : int64 option =
        let text = text.Trim()
        let digits = text |> Seq.takeWhile Char.IsAsciiDigit |> Seq.length
        let unitName = text.Substring(digits).Trim()
        match sizeUnits |> List.tryFind (fun (u, _) -> String.Equals(u, unitName, StringComparison.OrdinalIgnoreCase)) with
        | Some(_, multiplier) when digits > 0 && digits <= 12 ->
            let n = Int64.Parse(text.Substring(0, digits), CultureInfo.InvariantCulture)
            if n <= Int64.MaxValue / multiplier then Some(n * multiplier) else None
        | _ -> None

    /// A size as config writes it (round trips through `parseSize`): the largest unit that divides it.
    let formatSize (bytes: int64) =
        [ "TB", 1L <<< 40; "GB", 1L <<< 30; "MB", 1L <<< 20; "KB", 1L <<< 10 ]
        |> List.tryFind (fun (_, m) -> bytes >= m && bytes % m = 0L)
        |> Option.map (fun (u, m) -> $"{bytes / m}{u}")
        |> Option.defaultValue $"{bytes}B"

    /// A size within `low`..`high` (`parseSize`), or `fallback` when absent; names the keyword in its errors.
    let size errors (section: Section) key (low: int64) (high: int64) (fallback: int64) : int64 =
        match optString errors section key with
        | Some(text, at) ->
            match parseSize text with
            | Some n when n >= low && n <= high -> n
            | Some _ ->
                addError errors (keyword section key) at $"'{text}' is out of range" $"use a size from {formatSize low} to {formatSize high}"
                fallback
            | None ->
                addError errors (keyword section key) at $"'{text}' is not a size" "write it with its unit, like \"256MB\", \"512KB\" or \"1GB\""
                fallback
        | None -> fallback

    let private readDuration errors section key (fallback: TimeSpan) (zeroIsOff: bool) =
        match tryGet section key with
        | Some(_, _, TString(s, at)) ->
            match parseDuration s with
            | Some d when d > TimeSpan.Zero || (zeroIsOff && d = TimeSpan.Zero) -> d
            | _ ->
                addError errors (keyword section key) at $"'{s}' is not a duration" "write it like \"5s\", \"250ms\" or \"1m\""
                fallback
        | Some(_, _, node) ->
            addError
                errors
                (keyword section key)
                (TomlNode.position node)
                $"expected a duration string, found {TomlNode.kindName node}"
                "write it with its unit, like \"5s\" or \"250ms\""
            fallback
        | None -> fallback

    /// A positive duration, or the fallback when absent. Rejects `"0s"`: a zero timeout or interval means nothing.
    let duration errors section key (fallback: TimeSpan) = readDuration errors section key fallback false

    /// A duration where zero turns the feature off (`"0s"`, as the docs say), or the fallback when absent.
    let durationOrOff errors section key (fallback: TimeSpan) = readDuration errors section key fallback true

    /// `host:port` or `[v6]:port`; `*:port` listens on every address.
    let parseEndpoint (text: string) : Result<Endpoint, string> =
        let hostPort =
            if text.StartsWith "[" then
                match text.IndexOf "]:" with
                | -1 -> Error "an IPv6 address needs the form [addr]:port"
                | i -> Ok(text.Substring(1, i - 1), text.Substring(i + 2))
            else
                match text.LastIndexOf ':' with
                | -1 -> Error "missing ':port'"
                | i when text.IndexOf ':' <> i -> Error "an IPv6 address must be written in brackets: [addr]:port"
                | i -> Ok(text.Substring(0, i), text.Substring(i + 1))
        let validHost (host: string) =
            host = "*"
            || (match IPAddress.TryParse host with
                | true, _ -> true
                | _ -> Uri.CheckHostName host = UriHostNameType.Dns)
        match hostPort with
        | Error e -> Error e
        | Ok(host, port) ->
            match Int32.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture) with
            | true, p when p >= 0 && p <= 65535 ->
                if validHost host then Ok { Host = host; Port = p } else Error $"'{host}' is not an IP address or host name"
            | _ -> Error $"'{port}' is not a port number (0-65535)"

    let endpoint errors section key : Endpoint option =
        match optString errors section key with
        | Some(text, at) ->
            match parseEndpoint text with
            | Ok e -> Some e
            | Error message -> 
                addError errors (keyword section key) at message "write it like \"127.0.0.1:8443\" or \"[::1]:8443\""
                None
        | None -> None

    /// A path in config is relative to the config file's folder.
    let resolve (baseDir: string) (path: string) =
        if IO.Path.IsPathRooted path then path else IO.Path.GetFullPath(IO.Path.Combine(baseDir, path))

    /// A section that is absent: every key takes its fallback.
    let absent path (at: Position) = { Path = path; Table = { Entries = []; At = at } }

    /// Reads one section into errors of its own, so a check that asks "was anything wrong here?" sees only this
    /// section's mistakes: a typo in `[node]` must not hide "no listener is configured" in `[listen]`.
    let ownErrors (read: Errors -> 'T) : 'T * ConfigError list =
        let errors = Errors()
        let value = read errors
        value, List.ofSeq errors

/// What loading a config may ask of the file system, injected so the loader stays pure.
type ConfigIo =
    { FileExists: string -> bool
      /// Problems with the PEM files as (key, message): "cert", "key" or "chain".
      CheckTls: TlsConfig -> (string * string) list
      /// The text of a file (`[stats] password_file`), or why it cannot be read.
      ReadText: string -> Result<string, string> }
