// Validation of Kubernetes objects against the Kubernetes OpenAPI schemas, as shipped by the kubernetes-models
// packages (types and required fields, like kubeconform without --strict; unknown fields are not reported).
type Validatable = { validate(): void };
type ModelClass = new (data: unknown) => Validatable;

function modulePath(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('gateway.networking.k8s.io/'))
    return `@kubernetes-models/gateway-api/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('argoproj.io/')) return `@kubernetes-models/argo-rollouts/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('monitoring.coreos.com/'))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Throws with the object's kind/name and the schema errors when the object is invalid. */
export async function validateK8s(obj: {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
}): Promise<void> {
  let mod: Record<string, ModelClass>;
  try {
    mod = (await import(modulePath(obj.apiVersion, obj.kind))) as Record<string, ModelClass>;
  } catch {
    throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  }
  const Model = mod[obj.kind];
  if (!Model) throw new Error(`no model class ${obj.kind} in ${modulePath(obj.apiVersion, obj.kind)}`);
  try {
    new Model(obj).validate();
  } catch (e) {
    throw new Error(`${obj.kind}/${obj.metadata?.name}: ${(e as Error).message}`);
  }
}
