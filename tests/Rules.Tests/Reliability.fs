/// The reliability table's source (see tests/Shared/Reliability.cs for the C# twin): a property that runs many
/// generated cases records its count, one tab-separated row in artifacts/reliability/, after its assertions ran.
module Lb.Rules.Tests.Reliability

open System
open System.IO

/// The folder holding Lb.sln, found upwards from the test binaries.
let repositoryRoot () =
    let rec up (dir: DirectoryInfo | null) =
        match dir with
        | null -> failwith "Lb.sln not found above the test binaries"
        | dir when File.Exists(Path.Combine(dir.FullName, "Lb.sln")) -> dir.FullName
        | dir -> up dir.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

let private gate = obj ()

/// One row: area (the README table's group), what was tried, cases, faults injected, requests sent, failed.
let record (area: string) (what: string) (cases: int64) (faults: int64) (requests: int64) (failed: int64) =
    let folder = Path.Combine(repositoryRoot (), "artifacts", "reliability")
    Directory.CreateDirectory folder |> ignore
    let row = String.Join("\t", area, what.Replace('\t', ' '), cases, faults, requests, failed)
    lock gate (fun () -> File.AppendAllText(Path.Combine(folder, area.Replace('/', '_') + ".tsv"), row + "\n"))
