namespace Lb.Rules

open System
open ConfigReading

/// `[errors]`: page files replacing the pages lb answers by itself.
[<RequireQualifiedAccess>]
module ErrorPagesSection =
    /// The statuses lb answers by itself, each with a built-in page that `[errors]` can replace.
    let errorPageStatuses = [ 400; 403; 404; 408; 500; 502; 503; 504 ]

    /// `[errors]`: `503 = "errors/503.html"`, a page file per status lb answers itself. Rejects other statuses,
    /// non-string values and files that do not exist (paths are relative to the config file).
    let parse (root: Section) (baseDir: string) (fileExists: string -> bool) : (int * string) array * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root "errors" with
        | Some section ->
            rejectUnknownKeys errors section (errorPageStatuses |> List.map string)
            [| for key, _, _ in section.Table.Entries do
                   match Int32.TryParse key with
                   | true, status when List.contains status errorPageStatuses && key = string status ->
                       match optString errors section key with
                       | Some(path, at) ->
                           let full = resolve baseDir path
                           if path = "" || not (fileExists full) then
                               addError errors (keyword section key) at $"file not found: {full}" "paths are relative to the config file"
                           else
                               yield status, full
                       | None -> ()
                   | _ -> () |]
        | None -> [||]

