import { useMemo } from "react";
import type { JsonSchema, OpenApiDocument, OpenApiOperation } from "../../api/endpoints";
import { ErrorBox, Spinner } from "../../components/ErrorBox";
import { useLoad } from "../../components/hooks";
import { useSession } from "../../state/auth";

const METHODS = ["get", "post", "put", "patch", "delete"];

function refName(ref: string): string {
  return ref.split("/").pop() ?? ref;
}

/** A one-line type for a schema: `string`, `DeviceOut[]`, `number | null`, … */
export function schemaType(schema: JsonSchema | undefined): string {
  if (!schema) return "any";
  if (schema.$ref) return refName(schema.$ref);
  if (schema.anyOf || schema.oneOf) return (schema.anyOf ?? schema.oneOf ?? []).map(schemaType).join(" | ");
  if (schema.allOf) return schema.allOf.map(schemaType).join(" & ");
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.type === "array") return `${schemaType(schema.items)}[]`;
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  return schema.type ?? "object";
}

function TypeLink({ schema }: { schema: JsonSchema | undefined }) {
  const text = schemaType(schema);
  const ref = schema?.$ref ?? schema?.items?.$ref;
  if (ref) return <a href={`#schema-${refName(ref)}`}><code>{text}</code></a>;
  return <code>{text}</code>;
}

function constraints(s: JsonSchema): string {
  const parts: string[] = [];
  if (s.format) parts.push(s.format);
  if (s.minLength !== undefined) parts.push(`min length ${s.minLength}`);
  if (s.maxLength !== undefined) parts.push(`max length ${s.maxLength}`);
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  if (s.pattern) parts.push(`pattern ${s.pattern}`);
  if (s.default !== undefined) parts.push(`default ${JSON.stringify(s.default)}`);
  return parts.join(", ");
}

function SchemaTable({ schema }: { schema: JsonSchema }) {
  const props = Object.entries(schema.properties ?? {});
  if (!props.length) return <p className="muted small-text">Type: <TypeLink schema={schema} /></p>;
  return (
    <div className="table-wrap">
      <table className="schema-table">
        <thead><tr><th scope="col">Field</th><th scope="col">Type</th><th scope="col">Notes</th></tr></thead>
        <tbody>
          {props.map(([name, s]) => (
            <tr key={name}>
              <td><code>{name}</code>{schema.required?.includes(name) && <span className="required" title="required"> *</span>}</td>
              <td><TypeLink schema={s} /></td>
              <td className="small-text">{[s.description, constraints(s)].filter(Boolean).join(" — ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Operation({ method, path, op }: { method: string; path: string; op: OpenApiOperation }) {
  const body = op.requestBody?.content?.["application/json"]?.schema;
  const open = !op.security || op.security.length === 0;
  return (
    <details className="operation" id={op.operationId}>
      <summary>
        <span className={`method method-${method}`}>{method.toUpperCase()}</span>
        <code className="op-path">{path}</code>
        <span className="op-summary">{op.summary}</span>
        {open && <span className="pill">public</span>}
      </summary>
      <div className="operation-body">
        {op.description && <p>{op.description}</p>}
        {op.parameters && op.parameters.length > 0 && (
          <>
            <h4>Parameters</h4>
            <ul className="params">
              {op.parameters.map((p) => (
                <li key={`${p.in}-${p.name}`}>
                  <code>{p.name}</code> <span className="muted">({p.in}{p.required ? ", required" : ""})</span> <TypeLink schema={p.schema} />
                  {p.description && <span> — {p.description}</span>}
                </li>
              ))}
            </ul>
          </>
        )}
        {body && (
          <>
            <h4>Request body</h4>
            <p><TypeLink schema={body} /></p>
          </>
        )}
        <h4>Responses</h4>
        <ul className="responses">
          {Object.entries(op.responses ?? {}).map(([status, r]) => {
            const content = Object.entries(r.content ?? {})[0];
            return (
              <li key={status}>
                <span className={`status status-${status[0]}`}>{status}</span> {r.description}
                {content && <> — <span className="muted">{content[0]}</span> {content[1].schema && <TypeLink schema={content[1].schema} />}</>}
              </li>
            );
          })}
        </ul>
      </div>
    </details>
  );
}

export function groupByTag(doc: OpenApiDocument): [string, { method: string; path: string; op: OpenApiOperation }[]][] {
  const groups = new Map<string, { method: string; path: string; op: OpenApiOperation }[]>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? "other";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag)!.push({ method, path, op });
    }
  }
  return [...groups.entries()];
}

export default function ApiDocsPage() {
  const { api, config } = useSession();
  const doc = useLoad(api.openapi);
  const groups = useMemo(() => (doc.data ? groupByTag(doc.data) : []), [doc.data]);
  const schemas = Object.entries(doc.data?.components?.schemas ?? {});
  return (
    <div className="page api-docs">
      <header className="page-head">
        <div>
          <h1>{doc.data?.info?.title ?? "API documentation"}</h1>
          {doc.data && <p className="muted">Version {doc.data.info?.version} · OpenAPI {doc.data.openapi} · base URL <code>{config.apiBaseUrl}</code></p>}
        </div>
        <div className="head-aside"><a className="button secondary small" href={`${config.apiBaseUrl}/openapi.json`} target="_blank" rel="noreferrer">openapi.json</a></div>
      </header>
      <ErrorBox error={doc.error} />
      {doc.loading && <Spinner label="Loading the API document…" />}
      {doc.data && (
        <>
          <p className="muted small-text">Authenticated routes take <code>Authorization: Bearer &lt;access_token&gt;</code>. Errors are <code>{'{"error": {"code", "message", "details"?}}'}</code>.</p>
          {groups.map(([tag, ops]) => (
            <section key={tag} className="card" aria-labelledby={`tag-${tag}`}>
              <h2 id={`tag-${tag}`}>{tag}</h2>
              {ops.map(({ method, path, op }) => <Operation key={`${method} ${path}`} method={method} path={path} op={op} />)}
            </section>
          ))}
          <section className="card" aria-labelledby="schemas-title">
            <h2 id="schemas-title">Schemas</h2>
            {schemas.map(([name, schema]) => (
              <details key={name} id={`schema-${name}`} className="schema">
                <summary><code>{name}</code>{schema.description && <span className="muted small-text"> — {schema.description}</span>}</summary>
                <SchemaTable schema={schema} />
              </details>
            ))}
          </section>
        </>
      )}
    </div>
  );
}
