namespace Lb.Rules

open System
open ConfigReading

/// `[log]`: where the access log goes.
[<RequireQualifiedAccess>]
module LogSection =
    module K = Keywords.Log

    let defaultLog = { Access = K.access.Default }

    /// `[log] access`: `"stdout"` (default), `"off"`, or a file path (relative to the config file) appended to.
    /// Rejects an empty value.
    let parseAccessLog errors (log: Section) (baseDir: string) : AccessLogTarget =
        match optString errors log K.access.Name with
        | Some("stdout", _) -> AccessLogTarget.Stdout
        | None -> K.access.Default
        | Some("off", _) -> AccessLogTarget.Off
        | Some(path, at) when String.IsNullOrWhiteSpace path ->
            addError errors (keyword log K.access.Name) at "empty" "use \"stdout\", \"off\" or a file path"
            K.access.Default
        | Some(path, _) -> AccessLogTarget.File(resolve baseDir path)

    /// `[log]`: where the access log goes.
    let parse (root: Section) (baseDir: string) : LogConfig * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root Keywords.Log.Table with
        | Some log ->
            rejectUnknownKeys errors log K.names
            { Access = parseAccessLog errors log baseDir }
        | None -> defaultLog
