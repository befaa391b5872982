import { readFileSync } from 'node:fs';

/** Where a worker's credentials endpoint is, as its workloads see it. */
export interface EndpointAccess {
  url: string;
  tokenFile: string;
}

/** What one request to a credentials endpoint answered. */
export interface EndpointAnswer {
  status: number;
  accessKeyId?: string;
  expiration?: Date;
}

/** Asks the endpoint as an SDK would: the token re-read from its file, in the Authorization header. */
export async function askEndpoint(access: EndpointAccess): Promise<EndpointAnswer> {
  const token = readFileSync(access.tokenFile, 'utf8').trim();
  const response = await fetch(access.url, { headers: { Authorization: token } });
  if (response.status !== 200) {
    await response.body?.cancel();
    return { status: response.status };
  }
  const body = (await response.json()) as { AccessKeyId: string; Expiration: string };
  return { status: 200, accessKeyId: body.AccessKeyId, expiration: new Date(body.Expiration) };
}

/** Reads the endpoint's location from a workload that printed `url=…` and `tokenfile=…` lines. */
export function endpointFromOutput(text: string): EndpointAccess {
  const url = /url=(\S+)/.exec(text)?.[1];
  const tokenFile = /tokenfile=(\S+)/.exec(text)?.[1];
  if (!url || !tokenFile) throw new Error('workload printed no endpoint location');
  return { url, tokenFile };
}

/** A workload command that prints where its credentials endpoint is. */
export const PRINT_ENDPOINT = 'echo "url=$AWS_CONTAINER_CREDENTIALS_FULL_URI tokenfile=$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE agent=$PPID"';
