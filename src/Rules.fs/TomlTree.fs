namespace Lb.Rules

// Tomlyn's syntax tree is annotated nullable throughout; it is walked only when the parse had no error,
// where every node read here is present.
#nowarn "3261"

open System.Collections.Generic
open Tomlyn.Parsing
open Tomlyn.Syntax

/// 1-based line and column of a key or value in the config file.
type Position = { Line: int; Column: int }

/// A TOML document as a tree that remembers where every key and value was written,
/// so validation errors can point at the line and column (Tomlyn's object model forgets them).
type TomlNode =
    | TString of string * Position
    | TInteger of int64 * Position
    | TFloat of float * Position
    | TBoolean of bool * Position
    | TDateTime of string * Position
    | TArray of TomlNode list * Position
    | TTable of TomlTable

and TomlTable =
    { Entries: (string * Position * TomlNode) list
      At: Position }

/// A TOML value as lb writes it: the subset of TOML 1.0 its config uses.
[<RequireQualifiedAccess>]
type TomlValue =
    | String of string
    | Integer of int64
    | Boolean of bool
    | Array of TomlValue list
    /// An inline table `{ key = value, ... }` (TOML 1.0 §Inline Table: one line, no comments inside).
    | Table of (string * TomlValue) list

[<RequireQualifiedAccess>]
module TomlNode =
    let position node =
        match node with
        | TString(_, p)
        | TInteger(_, p)
        | TFloat(_, p)
        | TBoolean(_, p)
        | TDateTime(_, p)
        | TArray(_, p) -> p
        | TTable t -> t.At

    let kindName node =
        match node with
        | TString _ -> "a string"
        | TInteger _ -> "an integer"
        | TFloat _ -> "a float"
        | TBoolean _ -> "a boolean"
        | TDateTime _ -> "a date"
        | TArray _ -> "an array"
        | TTable _ -> "a table"

/// Builds a `TomlTable` tree from Tomlyn's syntax tree, reporting duplicate keys (TOML 1.0 §Keys forbids them).
[<RequireQualifiedAccess>]
module TomlTree =
    let private positionOf (node: SyntaxNode) =
        if isNull node then { Line = 1; Column = 1 }
        else { Line = node.Span.Start.Line + 1; Column = node.Span.Start.Column + 1 }

    /// Mutable while the document is read, frozen into `TomlTable` afterwards.
    type private Builder(at: Position) =
        member val Keys = List<string * Position>()
        member val Values = Dictionary<string, Choice<Builder, List<Builder>, TomlNode>>()
        member _.At = at

    let private keyText (key: SyntaxNode) =
        match key with
        | :? BareKeySyntax as b -> b.Key.Text
        | :? StringValueSyntax as s -> s.Value
        | other -> string other

    let private keyParts (key: KeySyntax) =
        [ yield keyText key.Key
          for dotted in key.DotKeys do
              yield keyText dotted.Key ]

    let rec private valueOf (errors: List<string * Position>) (value: ValueSyntax) : TomlNode =
        let at = positionOf value
        match value with
        | :? StringValueSyntax as s -> TString(s.Value, at)
        | :? IntegerValueSyntax as i -> TInteger(i.Value, at)
        | :? FloatValueSyntax as f -> TFloat(f.Value, at)
        | :? BooleanValueSyntax as b -> TBoolean(b.Value, at)
        | :? ArraySyntax as a -> TArray([ for item in a.Items -> valueOf errors item.Value ], at)
        | :? InlineTableSyntax as t ->
            let builder = Builder(at)
            for item in t.Items do
                addKeyValue errors builder item.KeyValue
            TTable(freeze builder)
        | other -> TDateTime(string other, at)

    and private addKeyValue errors (table: Builder) (kv: KeyValueSyntax) =
        let parts = keyParts kv.Key
        let at = positionOf kv.Key
        let parent = descend errors table (List.truncate (parts.Length - 1) parts) at
        let last = List.last parts
        if parent.Values.ContainsKey last then
            errors.Add($"duplicate key '{last}'", at)
        else
            parent.Keys.Add((last, at))
            parent.Values[last] <- Choice3Of3(valueOf errors kv.Value)

    /// Walks (creating as needed) the tables named by a dotted path; `[[x]]` arrays resolve to their last table.
    and private descend errors (table: Builder) (path: string list) (at: Position) : Builder =
        match path with
        | [] -> table
        | name :: rest ->
            let next =
                match table.Values.TryGetValue name with
                | true, Choice1Of3 child -> child
                | true, Choice2Of3 array when array.Count > 0 -> array[array.Count - 1]
                | true, _ ->
                    errors.Add($"'{name}' is already a value, not a table", at)
                    Builder(at)
                | _ ->
                    let child = Builder(at)
                    table.Keys.Add((name, at))
                    table.Values[name] <- Choice1Of3 child
                    child
            descend errors next rest at

    and private freeze (builder: Builder) : TomlTable =
        let entry (name: string, at: Position) =
            match builder.Values[name] with
            | Choice1Of3 child -> name, at, TTable(freeze child)
            | Choice2Of3 array -> name, at, TArray([ for t in array -> TTable(freeze t) ], at)
            | Choice3Of3 node -> name, at, node
        { Entries = [ for key in builder.Keys -> entry key ]; At = builder.At }

    let private addTable errors (root: Builder) (table: TableSyntaxBase) =
        let parts = keyParts table.Name
        let at = positionOf table.Name
        match table with
        | :? TableArraySyntax ->
            let parent = descend errors root (List.truncate (parts.Length - 1) parts) at
            let name = List.last parts
            let fresh = Builder(at)
            match parent.Values.TryGetValue name with
            | true, Choice2Of3 array -> array.Add fresh
            | true, _ -> errors.Add($"'{name}' is already defined and is not an array of tables", at)
            | _ ->
                parent.Keys.Add((name, at))
                parent.Values[name] <- Choice2Of3(List [ fresh ])
            fresh
        | _ -> descend errors root parts at

    /// Parses TOML text. Returns the tree, or every syntax error with its position.
    let parse (text: string) : Result<TomlTable, (string * Position) list> =
        let document = SyntaxParser.Parse(text, "config.toml", false)
        if document.HasErrors then
            Error
                [ for d in document.Diagnostics do
                      if d.Kind = DiagnosticMessageKind.Error then
                          yield d.Message, { Line = d.Span.Start.Line + 1; Column = d.Span.Start.Column + 1 } ]
        else
            let errors = List<string * Position>()
            let root = Builder({ Line = 1; Column = 1 })
            for kv in document.KeyValues do
                addKeyValue errors root kv
            for table in document.Tables do
                let target = addTable errors root table
                for kv in table.Items do
                    addKeyValue errors target kv
            if errors.Count = 0 then Ok(freeze root) else Error(List.ofSeq errors)
