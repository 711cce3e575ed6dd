namespace Lb.Rules

open System
open ConfigReading

/// `[[rules]]` and `[[apps.NAME.rules]]`: HAProxy's acl / use_backend / http-request as `when` → `then`.
[<RequireQualifiedAccess>]
module RulesSection =
    /// The keys of a `when` table; several in one table must all hold.
    let conditionKeys = [ "path_prefix"; "path_segment"; "path_regex"; "host"; "method"; "header"; "cookie"; "source"; "all"; "any"; "not" ]

    /// The keys of a `then` table.
    let actionKeys =
        [ "deny"; "redirect"; "location"; "allow"; "route"; "pin"; "set_request_header"; "add_request_header"; "remove_request_header"
          "set_response_header"; "add_response_header"; "remove_response_header" ]

    /// Where a rule list is: the global `[[rules]]` (every app known, for `route`) or one app's (its servers, for `pin`).
    type RuleScope =
        | GlobalRules of apps: AppConfig array
        | AppRules of app: string * servers: string list

    /// A string or an array of strings, each with its position.
    let private oneOrMany errors (section: Section) key (hint: string) : (string * Position) list =
        match tryGet section key with
        | Some(_, _, TString(s, at)) -> [ s, at ]
        | Some(_, _, TArray(items, at)) ->
            if items.IsEmpty then addError errors (keyword section key) at "empty list" hint
            items
            |> List.choose (fun item ->
                match item with
                | TString(s, at) -> Some(s, at)
                | node ->
                    addError errors (keyword section key) (TomlNode.position node) $"expected a string, found {TomlNode.kindName node}" hint
                    None)
        | Some(_, at, node) ->
            addError errors (keyword section key) at $"expected a string or an array of strings, found {TomlNode.kindName node}" hint
            []
        | None -> []

    let private rulePattern errors kw at (source: string) =
        match RequestRules.pattern source with
        | Ok p -> Some p
        | Error message ->
            addError errors kw at $"bad regex /{source}/: {message}" "a .NET regex without lookarounds or backreferences, like \"^/api/v[0-9]+/\""
            None

    /// `header = { name, equals | regex }` or `cookie = { ... }` (just `name`: present).
    let private parseValueTest errors (section: Section) (isCookie: bool) : (string * ValueTest) option =
        rejectUnknownKeys errors section [ "name"; "equals"; "regex" ]
        let what = if isCookie then "cookie" else "header"
        let name =
            match optString errors section "name" with
            | Some(n, _) when (if isCookie then Cookies.isValidName n else RequestRules.isHeaderName n) -> Some n
            | Some(n, at) ->
                addError errors (keyword section "name") at $"'{n}' is not a {what} name" "letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 token)"
                None
            | None ->
                addError errors (keyword section "name") section.Table.At "missing" $"name the {what}: {{ name = \"X-Beta\" }}"
                None
        let test =
            match optString errors section "equals", optString errors section "regex" with
            | Some _, Some(_, at) ->
                addError errors (keyword section "regex") at "equals and regex are both set" "keep one: equals compares exactly, regex searches"
                None
            | Some(v, at), None when v |> Seq.exists Char.IsControl ->
                addError errors (keyword section "equals") at "a control character cannot be in a value" "printable text only"
                None
            | Some(v, _), None -> Some(ValueTest.Equals v)
            | None, Some(r, at) -> rulePattern errors (keyword section "regex") at r |> Option.map ValueTest.Matches
            | None, None -> Some ValueTest.Present
        Option.map2 (fun n t -> n, t) name test

    /// One `when` table. Returns None when it holds a mistake (reported), so a broken condition is never mistaken
    /// for an unconditional one.
    let rec parseCondition (errors: Errors) (section: Section) : Condition option =
        let before = errors.Count
        rejectUnknownKeys errors section conditionKeys
        let nested key (node: TomlNode) (path: string) =
            match node with
            | TTable t -> parseCondition errors { Path = path; Table = t }
            | other ->
                addError errors path (TomlNode.position other) $"expected a table, found {TomlNode.kindName other}" $"write {key} = {{ path_prefix = \"/x\" }}"
                None
        let parts =
            [ for name, at, node in section.Table.Entries do
                  let kw = keyword section name
                  match name, node with
                  | "path_prefix", TString(p, at) when p.StartsWith "/" -> Some(Condition.PathPrefix p)
                  | "path_segment", TString(s, _) when s <> "" && not (s.Contains '/') -> Some(Condition.PathSegment s)
                  | "path_regex", TString(r, at) -> rulePattern errors kw at r |> Option.map Condition.PathMatches
                  | "host", TString(h, _) when h <> "" && Uri.CheckHostName h <> UriHostNameType.Unknown && not (h.Contains ':' && not (h.StartsWith "[")) ->
                      Some(Condition.Host h)
                  | "method", _ ->
                      let methods = oneOrMany errors section "method" "like \"POST\" or [\"GET\", \"HEAD\"]"
                      for m, at in methods do
                          if not (RequestRules.isHeaderName m) then
                              addError errors kw at $"'{m}' is not an HTTP method" "like \"GET\" or \"POST\" (case matters, RFC 9110 §9.1)"
                      if methods.IsEmpty then None else Some(Condition.Method(methods |> List.map fst))
                  | "source", _ ->
                      let networks =
                          oneOrMany errors section "source" "like \"10.0.0.0/8\" or [\"10.0.0.0/8\", \"192.168.0.0/16\"]"
                          |> List.choose (fun (text, at) ->
                              match RequestRules.cidr text with
                              | Ok c -> Some c
                              | Error message ->
                                  addError errors kw at $"'{text}': {message}" "an address or network like \"10.0.0.0/8\" or \"2001:db8::/32\""
                                  None)
                      if networks.IsEmpty then None else Some(Condition.Source networks)
                  | ("header" | "cookie"), TTable t ->
                      parseValueTest errors { Path = kw; Table = t } (name = "cookie")
                      |> Option.map (fun (n, test) -> if name = "cookie" then Condition.Cookie(n, test) else Condition.Header(n, test))
                  | ("all" | "any"), TArray(items, at) ->
                      if items.IsEmpty then
                          addError errors kw at "empty list" $"give {name} at least one condition, or remove it"
                      let conditions = items |> List.mapi (fun i item -> nested name item $"{kw}[{i}]")
                      if conditions |> List.forall Option.isSome && not items.IsEmpty then
                          let cs = conditions |> List.choose id
                          Some(if name = "all" then Condition.All cs else Condition.Any cs)
                      else None
                  | "not", node -> nested "not" node kw |> Option.map Condition.Not
                  | name, node when List.contains name conditionKeys ->
                      let hint =
                          match name with
                          | "path_prefix" -> "a string starting with '/', like \"/admin\""
                          | "path_segment" -> "one segment without '/', like \"admin\""
                          | "path_regex" -> "a string, like \"^/api/\""
                          | "host" -> "a host name without port, like \"www.example.com\""
                          | "header" | "cookie" -> $"write {name} = {{ name = \"...\", equals = \"...\" }}"
                          | _ -> $"write {name} = [ {{ ... }}, {{ ... }} ]"
                      let found =
                          match node with
                          | TString(s, _) -> $"'{s}'"
                          | other -> TomlNode.kindName other
                      addError errors kw at $"{found} is not a {name} condition" hint
                      None
                  | _ -> None ]
        if errors.Count > before then None
        else
            match parts |> List.choose id with
            | [] -> Some Condition.Always
            | [ one ] -> Some one
            | many -> Some(Condition.All many)

    /// `set_*_header = { Name = "value" }`, `add_*_header = { ... }`, `remove_*_header = ["Name"]`. Rejects names
    /// that are not tokens, the headers lb manages (`RequestRules.managedHeaders`) and values with control characters.
    let private parseHeaderEdits errors (section: Section) (direction: string) : HeaderEdit list =
        let checkName kw at (name: string) =
            if not (RequestRules.isHeaderName name) then
                addError errors kw at $"'{name}' is not a header name" "letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 token)"
                false
            elif List.contains (name.ToLowerInvariant()) RequestRules.managedHeaders then
                addError errors kw at $"lb manages {name} itself" "rules cannot change Host, framing, connection or X-Forwarded-* headers"
                false
            else true
        let valued verb (make: string * string -> HeaderEdit) =
            let key = $"{verb}_{direction}_header"
            match tryGet section key with
            | Some(_, _, TTable t) ->
                [ for name, at, node in t.Entries do
                      let kw = keyword section key + "." + name
                      match node with
                      | TString(v, vat) when RequestRules.isHeaderValue v -> if checkName kw at name then yield make (name, v)
                      | TString(v, vat) -> addError errors kw vat $"'{v}' cannot be a header value" "printable ASCII, no leading or trailing space"
                      | other -> addError errors kw (TomlNode.position other) $"expected a string, found {TomlNode.kindName other}" "write { \"X-Env\" = \"beta\" }" ]
            | Some(_, at, node) ->
                addError errors (keyword section key) at $"expected a table, found {TomlNode.kindName node}" "write { \"X-Env\" = \"beta\" }"
                []
            | None -> []
        let removed =
            let key = $"remove_{direction}_header"
            oneOrMany errors section key "like [\"X-Debug\"]"
            |> List.choose (fun (name, at) -> if checkName (keyword section key) at name then Some(HeaderEdit.Remove name) else None)
        valued "set" HeaderEdit.Set @ valued "add" HeaderEdit.Add @ removed

    /// One `then` table. Rejects an unknown action (with a did-you-mean), a deny, redirect or allow combined with
    /// anything, `location` without `redirect`, a `route` outside the global rules or to an unknown app, and a
    /// `pin` naming a server the app does not have.
    let parseAction (errors: Errors) (section: Section) (scope: RuleScope) : RuleAction option =
        let before = errors.Count
        for name, at, _ in section.Table.Entries do
            if not (List.contains name actionKeys) then
                match [ "request"; "response" ] |> List.tryFind (fun d -> name.EndsWith $"_{d}_header") with
                | Some d ->
                    addError errors (keyword section name) at "unknown header action" $"use set_{d}_header, add_{d}_header or remove_{d}_header"
                | None -> addError errors (keyword section name) at "unknown action" (suggestion actionKeys name)
        let present = section.Table.Entries |> List.map (fun (name, at, _) -> name, at)
        let has key = present |> List.exists (fun (n, _) -> n = key)
        let exclusive key =
            for name, at in present do
                if name <> key && not (key = "redirect" && name = "location") && List.contains name actionKeys then
                    addError errors (keyword section name) at $"{key} cannot be combined with {name}" $"a {key} is the whole answer: move {name} to its own rule"
        let action =
            if has "deny" then
                exclusive "deny"
                match optInt errors section "deny" with
                | Some(s, _) when s >= 400L && s <= 599L -> Some(RuleAction.Deny(int s))
                | Some(s, at) ->
                    addError errors (keyword section "deny") at $"{s} is not an error status" "use 400 to 599, like 403"
                    None
                | None -> None
            elif has "redirect" then
                exclusive "redirect"
                let status =
                    match optInt errors section "redirect" with
                    | Some(s, _) when List.contains s [ 301L; 302L; 303L; 307L; 308L ] -> Some(int s)
                    | Some(s, at) ->
                        addError errors (keyword section "redirect") at $"{s} is not a redirect status" "use 301, 302, 303, 307 or 308"
                        None
                    | None -> None
                let location =
                    match optString errors section "location" with
                    | Some(l, at) ->
                        match RequestRules.checkLocation l with
                        | [] -> Some l
                        | problems ->
                            for p in problems do
                                addError errors (keyword section "location") at p "like \"https://${host}/maintenance.html\" or \"/new${path}${query}\""
                            None
                    | None ->
                        addError errors (keyword section "location") section.Table.At "missing" "redirect to where: location = \"/maintenance.html\""
                        None
                Option.map2 (fun s l -> RuleAction.Redirect(s, l)) status location
            elif has "allow" then
                exclusive "allow"
                match optBool errors section "allow" with
                | Some true -> Some(RuleAction.Forward { Route = None; Pin = []; RequestHeaders = []; ResponseHeaders = [] })
                | Some false ->
                    let at = present |> List.find (fun (n, _) -> n = "allow") |> snd
                    addError errors (keyword section "allow") at "allow = false says nothing" "write allow = true, or deny = 403"
                    None
                | None -> None
            else
                if has "location" then
                    let at = present |> List.find (fun (n, _) -> n = "location") |> snd
                    addError errors (keyword section "location") at "location without redirect" "add redirect = 302"
                let route =
                    match optString errors section "route", scope with
                    | Some(_, at), AppRules _ ->
                        addError errors (keyword section "route") at "route belongs in the global [[rules]]" "an app's rules see only that app's requests"
                        None
                    | Some(name, at), GlobalRules apps when not (apps |> Array.exists (fun a -> a.Name = name)) ->
                        addError errors (keyword section "route") at $"no app is named '{name}'" (suggestion (apps |> Array.map (fun a -> a.Name) |> List.ofArray) name)
                        None
                    | Some(name, _), GlobalRules _ -> Some name
                    | None, _ -> None
                let servers =
                    match scope, route with
                    | AppRules(_, servers), _ -> Some servers
                    | GlobalRules apps, Some app -> apps |> Array.tryFind (fun a -> a.Name = app) |> Option.map (fun a -> a.Servers |> Array.map (fun s -> s.Name) |> List.ofArray)
                    | GlobalRules _, None -> None
                let pin =
                    let names = oneOrMany errors section "pin" "like [\"app1_3\"]"
                    match names, servers with
                    | [], _ -> []
                    | (_, at) :: _, None ->
                        if errors.Count = before then
                            addError errors (keyword section "pin") at "pin needs an app: a global rule pins with route" "add route = \"app1\", or move the rule to [[apps.app1.rules]]"
                        []
                    | names, Some servers ->
                        for name, at in names do
                            if not (List.contains name servers) then
                                addError errors (keyword section "pin") at $"no server is named '{name}'" (suggestion servers name)
                        names |> List.map fst |> List.distinct
                let edits = parseHeaderEdits errors section "request", parseHeaderEdits errors section "response"
                if present.IsEmpty then
                    addError errors section.Path section.Table.At "empty" "say what to do: deny = 403, redirect = 302 + location, allow = true, pin, route or a header action"
                Some(RuleAction.Forward { Route = route; Pin = pin; RequestHeaders = fst edits; ResponseHeaders = snd edits })
        if errors.Count > before then None else action

    /// `[[rules]]` or `[[apps.NAME.rules]]`: each `when` → `then`, in order. Rejects unknown keys, a rule without
    /// `then`, and a rule after an unconditional one (it could never be read).
    let parseRules (errors: Errors) (parent: Section) (scope: RuleScope) : Rule array =
        let path = keyword parent "rules"
        let tables =
            match tryGet parent "rules" with
            | Some(_, _, TArray(items, _)) ->
                items
                |> List.mapi (fun i item ->
                    match item with
                    | TTable t -> Some { Path = $"{path}[{i}]"; Table = t }
                    | node ->
                        addError errors $"{path}[{i}]" (TomlNode.position node) $"expected a table, found {TomlNode.kindName node}" $"write [[{path}]] sections"
                        None)
                |> List.choose id
            | Some(_, at, node) ->
                addError errors path at $"expected an array of tables, found {TomlNode.kindName node}" $"write [[{path}]] sections"
                []
            | None -> []
        let parsed =
            [ for rule in tables do
                  rejectUnknownKeys errors rule [ "when"; "then" ]
                  let condition =
                      match tryGet rule "when" with
                      | Some(_, _, TTable t) -> parseCondition errors { Path = keyword rule "when"; Table = t }
                      | Some(_, at, node) ->
                          addError errors (keyword rule "when") at $"expected a table, found {TomlNode.kindName node}" "write when = { path_prefix = \"/admin\" }"
                          None
                      | None -> Some Condition.Always
                  let action =
                      match optTable errors rule "then" with
                      | Some t -> parseAction errors t scope
                      | None ->
                          if (tryGet rule "then").IsNone then
                              addError errors (keyword rule "then") rule.Table.At "missing" "say what to do: then = { deny = 403 }"
                          None
                  rule, Option.map2 (fun w t -> { Name = rule.Path; When = w; Then = t }) condition action ]
        // Unreachable: a rule after one with no `when` (STYLE rule 3: reported with its place, never silently dead).
        parsed
        |> List.fold
            (fun (blocker: Rule option) (section, rule) ->
                match blocker with
                | Some b ->
                    addError errors section.Path section.Table.At $"unreachable: {b.Name} above has no when and matches every request" $"move this rule above {b.Name}, or give {b.Name} a when"
                    blocker
                | None -> rule |> Option.filter RequestRules.isUnconditional)
            None
        |> ignore
        parsed |> List.choose snd |> Array.ofList

    /// The global `[[rules]]`, read before any app's rules. Rejects an app's rules that a global rule without
    /// `when` makes unreachable (it decides every request first).
    let parse (root: Section) (apps: AppConfig array) : Rule array * ConfigError list =
        ownErrors <| fun errors ->
        let rules = parseRules errors root (GlobalRules apps)
        match rules |> Array.tryFind RequestRules.isUnconditional, tryGet root "apps" with
        | Some blocker, Some(_, _, TTable appTables) ->
            for name, _, node in appTables.Entries do
                match node with
                | TTable t ->
                    match tryGet { Path = $"apps.{name}"; Table = t } "rules" with
                    | Some(_, at, _) ->
                        addError errors $"apps.{name}.rules" at $"unreachable: global {blocker.Name} has no when and matches every request first" $"give {blocker.Name} a when, or remove these rules"
                    | None -> ()
                | _ -> ()
        | _ -> ()
        rules
